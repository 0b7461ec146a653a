package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
)

// Options tune Write.
type Options struct {
	// Mode is the new file's permission bits; zero means 0o644.
	Mode fs.FileMode
	// Check, when set, is called with the path of the synced temporary file
	// before it replaces the target; an error keeps the old file and is
	// returned. The temporary file's name does not end in the target's
	// extension, so include globs such as conf.d/*.conf never pick it up.
	Check func(tmpPath string) error
	// NoSync skips the fsyncs of the file and of its folder. Readers still
	// see the old file or the new one whole (the rename is atomic), and a
	// killed writer leaves only a temporary file; but after a crash of
	// the machine the file may be empty or old. For files that are
	// written again at start, whose readers refuse an incomplete one,
	// and written often: an fsync can take tens of milliseconds.
	NoSync bool
}

// Write makes path hold data. When path already holds exactly data it
// writes nothing and returns changed == false.
func Write(path string, data []byte, opts Options) (changed bool, err error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read current %s: %w", path, err)
	}
	if err := replace(path, data, opts); err != nil {
		return false, err
	}
	return true, nil
}

// RemoveTemporary removes the temporary files that writes of path left
// behind when their process was killed between creating and renaming
// them, and returns their names. Call it where no other process writes
// path, before the first write.
func RemoveTemporary(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return RemoveGlob(filepath.Join(dir, globEscape(confdir.TempPattern(base))))
}

// RemoveGlob removes the files that pattern matches (see filepath.Glob)
// and returns their names; a file already gone counts as removed.
func RemoveGlob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, filepath.Base(m))
	}
	return removed, errors.Join(errs...)
}

// globEscape escapes the glob metacharacters of a file name, except the
// pattern's final "*".
func globEscape(pattern string) string {
	name := pattern[:len(pattern)-1]
	var b []byte
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, name[i])
	}
	return string(b) + "*"
}

func replace(path string, data []byte, opts Options) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o644
	}
	tmp, err := os.CreateTemp(dir, confdir.TempPattern(base))
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmpPath := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpPath)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmpPath, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmpPath, err)
	}
	if !opts.NoSync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", tmpPath, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpPath, err)
	}
	if opts.Check != nil {
		if err := opts.Check(tmpPath); err != nil {
			return err
		}
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmpPath, path, err)
	}
	if opts.NoSync {
		return nil
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
