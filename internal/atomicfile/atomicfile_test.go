package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

	// Without fsyncs, the same replacement by rename.
	changed, err = Write(path, []byte("three\n"), Options{NoSync: true, Mode: 0o600})
	if err != nil || !changed {
		t.Fatalf("new bytes without fsync: changed=%v err=%v", changed, err)
	}
	assertContent(t, path, "three\n")
	assertOnlyFile(t, dir, "default.conf")
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("without fsync: %v, mode %v; want 0600", err, info.Mode().Perm())
	}
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

// The temporary files of a writer killed mid-write are removed, and
// nothing else.
func TestRemoveTemporary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a[1].conf", ".a[1].conf.tmp-123", ".a[1].conf.tmp-456", ".a.conf.tmp-1", "a[1].conf.tmp-9", ".other.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemporary(filepath.Join(dir, "a[1].conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0] != ".a[1].conf.tmp-123" || removed[1] != ".a[1].conf.tmp-456" {
		t.Errorf("removed %v, want the two temporary files of a[1].conf", removed)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{".a.conf.tmp-1", ".other.tmp-1", "a[1].conf", "a[1].conf.tmp-9"}; strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("left %v, want %v", left, want)
	}
}
