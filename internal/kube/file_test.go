package kube

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFile(t *testing.T) {
	t.Parallel()
	objs, err := LoadFile("testdata/objects.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range objs.Services {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	if got := strings.Join(names, " "); got != "shop/web shop/internal shop/api" {
		t.Errorf("services %q", got)
	}
	if len(objs.EndpointSlices) != 1 || objs.EndpointSlices[0].Name != "web-abcde" || len(objs.EndpointSlices[0].Endpoints) != 2 {
		t.Errorf("endpoint slices %+v", objs.EndpointSlices)
	}
	if got := objs.Services[0].Annotations["kube-nginx-sync.io/host"]; got != "shop.example.com" {
		t.Errorf("annotation lost: %q", got)
	}
}

func TestLoadFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, content, err string }{
		{"not yaml", "{{{", "document 1"},
		{"bad item", "kind: List\napiVersion: v1\nitems:\n- kind: Service\n  apiVersion: v1\n  spec: {ports: 7}\n", "item 0"},
		{"bad second document", "kind: Service\napiVersion: v1\nmetadata: {name: a}\n---\nkind: Service\napiVersion: v1\nspec: []\n", "document 2"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "objects.yaml")
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.err)
		}
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
}

// FuzzDecodeObjects: any bytes either decode or fail with an error; they
// never panic, and what decodes is only Services and EndpointSlices.
func FuzzDecodeObjects(f *testing.F) {
	if seed, err := os.ReadFile("testdata/objects.yaml"); err == nil {
		f.Add(seed)
	}
	for _, s := range []string{"kind: List\nitems: [null, 1, {kind: Service}]", "---\n---\n", "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"spec\":{\"ports\":[{\"port\":99999999999}]}}", "kind: List\napiVersion: v1\nitems: {a: b}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := decodeObjects(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, s := range objs.Services {
			if s == nil {
				t.Fatal("nil Service")
			}
		}
		for _, s := range objs.EndpointSlices {
			if s == nil {
				t.Fatal("nil EndpointSlice")
			}
		}
	})
}
