"""Analysis: loss landscapes (1-D and 2-D sweeps), the bump mollifier, grid descent,
gradient checks against a reference, and the score-function vs quadrature comparison.
Each analysis returns a result object that saves itself (``.save(folder)``)."""
