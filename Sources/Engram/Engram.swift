// Engram's umbrella module: `import Engram` gives every library layer — tensors and autograd (EngramTensor),
// layers, models and optimizers (EngramNN), datasets and benchmarks (EngramData), continual-learning strategies,
// training and experiments (EngramCL), reports and charts (EngramReport), the SQLite index of runs (EngramStore). The layers themselves re-export nothing:
// each file imports the layers it uses.
@_exported import EngramTensor
@_exported import EngramNN
@_exported import EngramData
@_exported import EngramCL
@_exported import EngramReport
@_exported import EngramStore
