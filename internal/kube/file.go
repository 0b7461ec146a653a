package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// LoadFile reads Services, EndpointSlices and Secrets, and Ingresses and
// IngressClasses, from a YAML or JSON file: the output of `kubectl get
// svc,endpointslices,secrets,ingresses,ingressclasses -A -o yaml` (a
// List), or documents separated by "---", or both. Objects of other kinds
// are skipped, and so is the data of Secrets other than kubernetes.io/tls
// ones. Nothing else is filtered: that is model.Build's job.
func LoadFile(path string) (Objects, error) {
	f, err := os.Open(path)
	if err != nil {
		return Objects{}, fmt.Errorf("read objects: %w", err)
	}
	defer f.Close()
	objs, err := decodeObjects(f)
	if err != nil {
		return Objects{}, fmt.Errorf("read objects from %s: %w", path, err)
	}
	return objs, nil
}

func decodeObjects(r io.Reader) (Objects, error) {
	var objs Objects
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 64*1024)
	for doc := 1; ; doc++ {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return Objects{}, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(raw.Raw) == 0 || string(raw.Raw) == "null" {
			continue // an empty document
		}
		if err := objs.add(raw.Raw); err != nil {
			return Objects{}, fmt.Errorf("document %d: %w", doc, err)
		}
	}
}

// add decodes one JSON object, or the items of a list, into objs.
func (objs *Objects) add(data []byte) error {
	var meta metav1.TypeMeta
	if err := json.Unmarshal(data, &meta); err != nil {
		return err
	}
	if strings.HasSuffix(meta.Kind, "List") {
		var list struct {
			Items []runtime.RawExtension `json:"items"`
		}
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("%s: %w", meta.Kind, err)
		}
		for i, item := range list.Items {
			if err := objs.add(item.Raw); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		return nil
	}
	switch meta.GroupVersionKind() {
	case corev1.SchemeGroupVersion.WithKind("Service"), discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"),
		corev1.SchemeGroupVersion.WithKind("Secret"),
		networkingv1.SchemeGroupVersion.WithKind("Ingress"), networkingv1.SchemeGroupVersion.WithKind("IngressClass"):
	default:
		return nil
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return err
	}
	switch o := obj.(type) {
	case *corev1.Service:
		objs.Services = append(objs.Services, o)
	case *discoveryv1.EndpointSlice:
		objs.EndpointSlices = append(objs.EndpointSlices, o)
	case *networkingv1.Ingress:
		objs.Ingresses = append(objs.Ingresses, o)
	case *networkingv1.IngressClass:
		objs.IngressClasses = append(objs.IngressClasses, o)
	case *corev1.Secret:
		keepTLSData(o, o.Type == corev1.SecretTypeTLS)
		objs.Secrets = append(objs.Secrets, o)
	}
	return nil
}
