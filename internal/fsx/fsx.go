// Package fsx holds the file-system steps that make writes durable, shared by
// the feed builder, the catalog's feed marker and the CSV order log, so all
// three get fsync right the same way on every platform; and the lock files
// that keep one process on a SQLite database or a feed folder.
package fsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLocked is LockExclusive's answer when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// WriteFileAtomic replaces path with data: written to a temporary file in the
// same folder, fsynced, renamed over path, and the folder fsynced, so a crash
// leaves either the old or the new content, never a torn file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
