package train

import "github.com/mlship/mlship/internal/kernels"

// float is the element type of a dense network's training buffers: float64 (the
// default) or float32 (--dtype float32).
type float = kernels.Float

// is64 reports whether T is float64 (a constant for each instantiation).
func is64[T float]() bool { return kernels.Is64[T]() }
