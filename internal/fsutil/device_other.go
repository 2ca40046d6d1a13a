//go:build !unix

package fsutil

import "os"

// device is unknown off Unix.
func device(os.FileInfo) (uint64, bool) { return 0, false }
