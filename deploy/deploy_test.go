package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const binaryPath = "/usr/local/bin/kube-nginx-sync"

// TestBinaryIsStatic: the images copy the binary onto distroless and the
// nginx image, so it must build with CGO disabled and need no loader.
func TestBinaryIsStatic(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "kube-nginx-sync")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/kube-nginx-sync")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build with CGO_ENABLED=0: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %v)", p.Type)
		}
	}
}

// TestDockerfilesMatchManifests: the paths and user the Dockerfiles set are
// the ones the manifests rely on.
func TestDockerfilesMatchManifests(t *testing.T) {
	t.Parallel()
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	deployment := read("base/deployment.yaml")
	chart := read("helm/kube-nginx-sync/templates/deployment.yaml") + read("helm/kube-nginx-sync/values.yaml")
	for _, df := range []string{"../Dockerfile", "../Dockerfile.nginx"} {
		text := read(df)
		for _, want := range []string{
			"CGO_ENABLED=0 go build",
			"COPY --from=build /out/kube-nginx-sync " + binaryPath,
			`ENTRYPOINT ["` + binaryPath + `"]`,
			"USER 101:101",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", df, want)
			}
		}
	}
	// The user the images run as is the one the Pods ask for.
	for name, m := range map[string]string{"base": deployment, "chart": chart} {
		if !strings.Contains(m, "runAsUser: 101") {
			t.Errorf("%s does not run as user 101", name)
		}
	}
	// The nginx image's default command watches the folder the manifests
	// share between the containers.
	if !strings.Contains(read("../Dockerfile.nginx"), `CMD ["reload", "--config-dir=/etc/nginx/conf.d"]`) ||
		!strings.Contains(deployment, "mountPath: /etc/nginx/conf.d") {
		t.Error("the nginx image's config folder and the manifests' shared folder differ")
	}
	// Every folder nginx writes to under a read-only root is a volume.
	for _, dir := range []string{"/var/cache/nginx", "/var/run", "/tmp"} {
		if !strings.Contains(deployment, "mountPath: "+dir) || !strings.Contains(chart, "mountPath: "+dir) {
			t.Errorf("%s is not a volume, but nginx writes there", dir)
		}
	}
	// The images the manifests name are the ones the Dockerfiles build.
	images := regexp.MustCompile(`docker build (?:-f \S+ )?-t (\S+):`).FindAllStringSubmatch(read("../Dockerfile")+read("../Dockerfile.nginx"), -1)
	kustomization := read("base/kustomization.yaml")
	for _, m := range images {
		if !strings.Contains(kustomization, "newName: "+m[1]) || !strings.Contains(chart, "repository: "+m[1]) {
			t.Errorf("image %s is not the one the manifests use", m[1])
		}
	}
	if len(images) != 2 {
		t.Errorf("found %d image names in the Dockerfiles' build commands, want 2", len(images))
	}
}
