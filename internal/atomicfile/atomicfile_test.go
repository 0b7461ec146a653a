package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "default.conf")

	changed, err := Write(path, []byte("one\n"), Options{})
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", info.Mode().Perm())
	}

	changed, err = Write(path, []byte("one\n"), Options{})
	if err != nil || changed {
		t.Fatalf("same bytes: changed=%v err=%v, want no write", changed, err)
	}
	if info2, _ := os.Stat(path); !os.SameFile(info, info2) {
		t.Errorf("unchanged write replaced the file")
	}

	changed, err = Write(path, []byte("two\n"), Options{})
	if err != nil || !changed {
		t.Fatalf("new bytes: changed=%v err=%v", changed, err)
	}
	assertContent(t, path, "two\n")
	assertOnlyFile(t, dir, "default.conf")
}

func TestWriteCheckFailureKeepsOldFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "default.conf")
	if _, err := Write(path, []byte("good\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	var checked string
	_, err := Write(path, []byte("bad\n"), Options{Check: func(tmp string) error {
		b, err := os.ReadFile(tmp)
		if err != nil {
			return err
		}
		checked = string(b)
		if filepath.Ext(tmp) == ".conf" {
			t.Errorf("temporary file %s would match *.conf", tmp)
		}
		return refused
	}})
	if !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the check's error", err)
	}
	if checked != "bad\n" {
		t.Errorf("check saw %q, want the new bytes", checked)
	}
	assertContent(t, path, "good\n")
	assertOnlyFile(t, dir, "default.conf")
}

func TestWriteMissingFolder(t *testing.T) {
	t.Parallel()
	_, err := Write(filepath.Join(t.TempDir(), "missing", "default.conf"), []byte("x"), Options{})
	if err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only %s (no temporary files left)", names, name)
	}
}
