package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
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
	deployment := read(t, "base/deployment.yaml")
	chart := read(t, "helm/kube-nginx-sync/templates/deployment.yaml") + read(t, "helm/kube-nginx-sync/values.yaml")
	nginxImages := []string{"../Dockerfile.nginx", "../Dockerfile.nginx-lua"}
	for _, df := range append([]string{"../Dockerfile"}, nginxImages...) {
		text := read(t, df)
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
	// The nginx images' default command watches the folder the manifests
	// share between the containers.
	for _, df := range nginxImages {
		if !strings.Contains(read(t, df), `CMD ["reload", "--config-dir=/etc/nginx/conf.d"]`) ||
			!strings.Contains(deployment, "mountPath: /etc/nginx/conf.d") {
			t.Errorf("%s's config folder and the manifests' shared folder differ", df)
		}
	}
	// Every folder nginx writes to under a read-only root is a volume.
	for _, dir := range []string{"/var/cache/nginx", "/var/run", "/tmp"} {
		if !strings.Contains(deployment, "mountPath: "+dir) || !strings.Contains(chart, "mountPath: "+dir) {
			t.Errorf("%s is not a volume, but nginx writes there", dir)
		}
	}
	// The images the manifests name are the ones the Dockerfiles build:
	// the base names the first two, the lua overlay the Lua image.
	var builds string
	for _, df := range append([]string{"../Dockerfile"}, nginxImages...) {
		builds += read(t, df)
	}
	images := regexp.MustCompile(`docker build (?:-f \S+ )?-t (\S+):`).FindAllStringSubmatch(builds, -1)
	kustomizations := read(t, "base/kustomization.yaml") + read(t, "overlays/lua/kustomization.yaml")
	for _, m := range images {
		if !strings.Contains(kustomizations, "newName: "+m[1]) || !strings.Contains(chart, "repository: "+m[1]) {
			t.Errorf("image %s is not the one the manifests use", m[1])
		}
	}
	if len(images) != 3 {
		t.Errorf("found %d image names in the Dockerfiles' build commands, want 3", len(images))
	}
}

// luaMainConfig is the Lua image's nginx.conf, and where the image puts it.
const luaMainConfig, luaMainConfigInImage = "nginx-lua/nginx.conf", "/etc/nginx/nginx.conf"

// TestLuaImage: the Lua image is built from Debian bookworm's packages,
// without Debian's default site, with its own main config; that config
// loads NDK before the Lua module, includes the shared folder, and writes
// only where the manifests mount a volume (or to the container's output).
func TestLuaImage(t *testing.T) {
	t.Parallel()
	df := read(t, "../Dockerfile.nginx-lua")
	for _, want := range []string{
		"FROM debian:bookworm-slim",
		"apt-get install -y --no-install-recommends nginx libnginx-mod-http-lua",
		"rm -f /etc/nginx/sites-enabled/*",
		"COPY deploy/" + luaMainConfig + " " + luaMainConfigInImage,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile.nginx-lua lacks %q", want)
		}
	}

	dirs := directives(read(t, luaMainConfig))
	var modules []string
	for _, d := range dirs {
		if d.name == "load_module" {
			modules = append(modules, d.value)
		}
	}
	wantModules := []string{nginx.ModulesDir + "/ndk_http_module.so", nginx.ModulesDir + "/ngx_http_lua_module.so"}
	if !slices.Equal(modules, wantModules) {
		t.Errorf("%s loads %q, want %q (NDK first)", luaMainConfig, modules, wantModules)
	}
	if !slices.Contains(dirs, directive{"include", "/etc/nginx/conf.d/*.conf"}) {
		t.Errorf("%s does not include /etc/nginx/conf.d/*.conf", luaMainConfig)
	}
	deployment := read(t, "base/deployment.yaml")
	chart := read(t, "helm/kube-nginx-sync/templates/deployment.yaml")
	written := 0
	for _, d := range dirs {
		if d.name != "pid" && d.name != "error_log" && d.name != "access_log" && !strings.HasSuffix(d.name, "_temp_path") {
			continue
		}
		written++
		path := strings.Fields(d.value)[0]
		if path == "stderr" || path == "/dev/stdout" || path == "/dev/stderr" {
			continue
		}
		volume := false
		for _, dir := range []string{"/var/cache/nginx", "/var/run", "/tmp"} {
			if strings.HasPrefix(path, dir+"/") {
				volume = strings.Contains(deployment, "mountPath: "+dir) && strings.Contains(chart, "mountPath: "+dir)
			}
		}
		if !volume {
			t.Errorf("%s: %s %s is not in a volume of the manifests, under a read-only root", luaMainConfig, d.name, path)
		}
	}
	// pid, error_log, access_log, and the five temp paths.
	if written != 8 {
		t.Errorf("%s sets %d paths that nginx writes, want 8 (every default is Debian's, under a read-only root)", luaMainConfig, written)
	}
}

// TestLuaImageMainConfigLoads: nginx -t accepts the Lua image's main
// config with a config of the lua shape in the shared folder, its paths
// moved under a folder of the test's own (this machine's nginx and Lua
// module are the image's: Debian bookworm's packages).
func TestLuaImageMainConfigLoads(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
	if nginx.LuaModules() == nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nginx's Lua module is required in CI (apt-get install libnginx-mod-http-lua)")
		}
		t.Skip("nginx's Lua module is not installed (apt-get install libnginx-mod-http-lua)")
	}
	prefix := t.TempDir()
	moved := strings.NewReplacer(
		"/etc/nginx/conf.d", filepath.Join(prefix, "conf.d"),
		"/var/cache/nginx", filepath.Join(prefix, "cache"),
		"/var/run", filepath.Join(prefix, "run"),
	).Replace(read(t, luaMainConfig))
	for _, dir := range []string{"conf.d", "cache", "run"} {
		if err := os.Mkdir(filepath.Join(prefix, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mainConf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(mainConf, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	// The lua shape's golden config, as nginxconf renders it.
	if err := os.WriteFile(filepath.Join(prefix, "conf.d", "default.conf"), []byte(read(t, "../internal/nginxconf/testdata/lua-typical.conf")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginxBin, "-t", "-p", prefix+"/", "-c", mainConf).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t refuses %s: %v\n%s", luaMainConfig, err, out)
	}
}

// directive is one simple directive of an nginx config: its name and
// everything up to the semicolon.
type directive struct{ name, value string }

// directives returns a config's simple directives, one a line, in order
// (enough for a main config written by hand; blocks are skipped).
func directives(conf string) []directive {
	var out []directive
	re := regexp.MustCompile(`^\s*([a-z_]+)\s+([^;{#]+);`)
	for _, line := range strings.Split(conf, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			out = append(out, directive{m[1], strings.TrimSpace(m[2])})
		}
	}
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
