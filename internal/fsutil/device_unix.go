//go:build unix

package fsutil

import (
	"os"
	"syscall"
)

// device is the file system a file lives on.
func device(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Dev), true // Dev is int32 on darwin
}
