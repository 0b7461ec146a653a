// Package deploy holds the deployment files of kube-nginx-sync (kustomize
// base and overlays, Helm chart, and in nginx-lua/ the main nginx.conf of
// the nginx image for the lua shape; the Dockerfiles are at the
// repository's root) and the tests that check what can be checked without
// a container engine. The end-to-end test TestDeployManifests applies them
// to a real API server.
package deploy
