package controller

import (
	"context"
	"fmt"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// Pipeline is one pass from cluster objects to the config file.
type Pipeline struct {
	// Model selects and routes the Services.
	Model model.Options
	// Renderer turns the model into the file's bytes.
	Renderer *nginxconf.Renderer
	// Output is the config file's path.
	Output string
	// Validate, when set, checks the staged file (its path is passed)
	// before it replaces Output.
	Validate func(ctx context.Context, path string) error
}

// Generate builds the model and renders it.
func (p *Pipeline) Generate(objs kube.Objects) (model.Result, []byte, error) {
	res := model.Build(objs.Services, objs.EndpointSlices, p.Model)
	data, err := p.Renderer.Render(res.Config, res.Services)
	if err != nil {
		return res, nil, fmt.Errorf("render: %w", err)
	}
	return res, data, nil
}

// Write replaces Output with data unless it already holds exactly data;
// changed says whether it wrote.
func (p *Pipeline) Write(ctx context.Context, data []byte) (changed bool, err error) {
	opts := atomicfile.Options{}
	if p.Validate != nil {
		opts.Check = func(tmp string) error { return p.Validate(ctx, tmp) }
	}
	changed, err = atomicfile.Write(p.Output, data, opts)
	if err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	return changed, nil
}
