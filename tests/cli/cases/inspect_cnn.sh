$HPCZ inspect samples/digits_cnn.onnx
