from visionassist_seg.cli.app import main

main()
