package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ValidateSnippet checks, with `nginx -t`, a file meant to be included in
// nginx's http block (such as conf.d/default.conf). It wraps the file in a
// minimal main config of its own, in a temporary folder, so it needs neither
// root nor the machine's nginx.conf; the error carries nginx's own message.
func ValidateSnippet(ctx context.Context, nginxBin, snippet string) error {
	abs, err := filepath.Abs(snippet)
	if err != nil {
		return fmt.Errorf("validate %s: %w", snippet, err)
	}
	dir, err := os.MkdirTemp("", "kube-nginx-sync-validate-")
	if err != nil {
		return fmt.Errorf("validate %s: %w", snippet, err)
	}
	defer os.RemoveAll(dir)

	var conf strings.Builder
	if content, err := os.ReadFile(abs); err == nil && bytes.Contains(content, []byte("_by_lua")) {
		for _, m := range LuaModules() {
			fmt.Fprintf(&conf, "load_module %s;\n", quotePath(m))
		}
	}
	fmt.Fprintf(&conf, "pid %s;\nevents {}\nhttp {\n", quotePath(filepath.Join(dir, "nginx.pid")))
	for _, temp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&conf, "    %s_temp_path %s;\n", temp, quotePath(filepath.Join(dir, temp)))
	}
	fmt.Fprintf(&conf, "    access_log off;\n    include %s;\n}\n", quotePath(abs))
	main := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(main, []byte(conf.String()), 0o600); err != nil {
		return fmt.Errorf("validate %s: %w", snippet, err)
	}

	cmd := exec.CommandContext(ctx, nginxBin, "-t", "-q", "-e", "stderr", "-p", dir+"/", "-c", main)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && ctx.Err() == nil && out.Len() > 0:
		return &InvalidConfigError{File: snippet, Message: strings.TrimSpace(out.String())}
	default:
		return fmt.Errorf("run nginx -t on %s: %w: %s", snippet, err, strings.TrimSpace(out.String()))
	}
}

// ModulesDir is where Debian's nginx packages put dynamic modules.
const ModulesDir = "/usr/lib/nginx/modules"

// LuaModules returns the dynamic modules that the Lua shape needs, in the
// order nginx must load them (the Lua module uses NDK), where they are
// installed as Debian installs them (libnginx-mod-http-lua); none when
// they are not.
func LuaModules() []string {
	var out []string
	for _, name := range []string{"ndk_http_module.so", "ngx_http_lua_module.so"} {
		p := filepath.Join(ModulesDir, name)
		if _, err := os.Stat(p); err != nil {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// InvalidConfigError is nginx -t's refusal of a config, with its message.
type InvalidConfigError struct {
	File    string
	Message string
}

func (e *InvalidConfigError) Error() string {
	return fmt.Sprintf("nginx -t refused %s: %s", e.File, e.Message)
}

// quotePath quotes a file path for an nginx config.
func quotePath(p string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
}
