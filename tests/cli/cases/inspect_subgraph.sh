$HPCZ inspect samples/patterns/if_subgraph.onnx
