"""After training: run a ShallowNet model on frames (`predict`) and measure it on a labelled split (`evaluate`).

onnxruntime runs ONNX models without torch; a `.pt` checkpoint runs through torch.
`frames` places any frame on the model's 400x640 canvas and back, `geometry` turns a
pupil mask into an ellipse, `models` loads either kind of model behind one interface.
"""
