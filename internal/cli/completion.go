package cli

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
)

// The shell completions that look things up, as kubectl's do: contexts
// from the kubeconfig, namespaces and Services from the cluster (or from
// --from-file). A lookup that fails completes nothing. cobra's
// `completion` command writes the scripts that call them.

// completionTimeout bounds a completion's wait for the API server: a
// shell waits for it.
const completionTimeout = 5 * time.Second

func noCompletions() ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeContexts completes --context with the contexts of the kubeconfig
// that --kubeconfig (or $KUBECONFIG, or ~/.kube/config) names.
func (f *clientFlags) completeContexts(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := rules.Load()
	if err != nil {
		return noCompletions()
	}
	return slices.Sorted(maps.Keys(cfg.Contexts)), cobra.ShellCompDirectiveNoFileComp
}

// completeNamespaces completes --namespace with the cluster's namespaces.
func (f *clientFlags) completeNamespaces(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	client, err := kube.NewClient(f.options())
	if err != nil {
		return noCompletions()
	}
	ctx, cancel := context.WithTimeout(commandContext(cmd), completionTimeout)
	defer cancel()
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return noCompletions()
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeServices completes explain's NAMESPACE/SERVICE with the Services
// of --from-file or of the cluster.
func completeServices(cmd *cobra.Command, args []string, toComplete string, client clientFlags, src *sourceFlags) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return noCompletions()
	}
	var refs []string
	if src.fromFile != "" {
		objs, err := kube.LoadFile(src.fromFile)
		if err != nil {
			return noCompletions()
		}
		for _, s := range objs.Services {
			refs = append(refs, s.Namespace+"/"+s.Name)
		}
	} else {
		c, err := kube.NewClient(client.options())
		if err != nil {
			return noCompletions()
		}
		ctx, cancel := context.WithTimeout(commandContext(cmd), completionTimeout)
		defer cancel()
		// Only the namespace typed so far, when one was.
		ns, _, _ := strings.Cut(toComplete, "/")
		if !strings.Contains(toComplete, "/") {
			ns = ""
		}
		list, err := c.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return noCompletions()
		}
		for _, s := range list.Items {
			refs = append(refs, s.Namespace+"/"+s.Name)
		}
	}
	refs = slices.DeleteFunc(refs, func(r string) bool { return !strings.HasPrefix(r, toComplete) })
	slices.Sort(refs)
	return refs, cobra.ShellCompDirectiveNoFileComp
}

// commandContext is cmd's context, or a background one in the completion
// command, which may run without.
func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
