// Package fsutil holds small file helpers shared by the steps.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFileAtomic writes data to a temporary file beside path and renames it into
// place, so readers never see a partial file and a failed write leaves no file.
// Missing parent directories are created.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReplaceDir moves the complete directory tmp to dir, replacing what was at dir:
// the old directory is moved aside first and put back if the move fails, and is
// removed once tmp is in place. tmp and dir must be on the same file system.
func ReplaceDir(tmp, dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return os.Rename(tmp, dir)
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	return os.RemoveAll(old)
}

// CheckCreatable reports, before any work is done, whether path can later be
// written by creating a temporary sibling and renaming it into place (as
// WriteFileAtomic and ReplaceDir do): the nearest existing ancestor of path's
// parent must be a directory in which a directory can be created. It probes by
// creating and removing a temporary directory there, and leaves nothing behind.
// Missing parents are fine (the writers create them). The errors name the
// directory and do not repeat path; callers put path in front.
func CheckCreatable(path string) error {
	p := filepath.Dir(filepath.Clean(path))
	for {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%q is not a directory", p)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("cannot use %q: %w", p, unwrapPath(err))
		}
		up := filepath.Dir(p)
		if up == p {
			return fmt.Errorf("cannot use %q: %w", p, unwrapPath(err))
		}
		p = up
	}
	tmp, err := os.MkdirTemp(p, ".mlship-probe-*")
	if err != nil {
		return fmt.Errorf("cannot create files in %q: %w", p, unwrapPath(err))
	}
	return os.Remove(tmp)
}

// HoldsWorkingDir reports whether dir is the working directory or one of its
// parents (which cannot be replaced while the process works inside it). It
// compares files, not names, so "." and symbolic links are seen through. A dir
// that does not exist holds nothing.
func HoldsWorkingDir(dir string) (bool, error) {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return false, nil
		}
		return false, err
	}
	if !st.IsDir() {
		return false, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return false, err
	}
	for p := wd; ; p = filepath.Dir(p) {
		if pst, err := os.Stat(p); err == nil && os.SameFile(st, pst) {
			return true, nil
		}
		if filepath.Dir(p) == p {
			return false, nil
		}
	}
}

// IsMountPoint reports whether the directory dir is the root of a mounted file
// system (a volume mounted into a container, say): renaming it fails with
// "device or resource busy". False when it cannot tell.
func IsMountPoint(dir string) bool {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return false
	}
	pst, err := os.Stat(filepath.Join(dir, ".."))
	if err != nil {
		return false
	}
	if os.SameFile(st, pst) { // the root directory
		return true
	}
	d, ok := device(st)
	pd, pok := device(pst)
	return ok && pok && d != pd
}

// unwrapPath drops the *fs.PathError wrapper, whose message repeats a path the
// caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
