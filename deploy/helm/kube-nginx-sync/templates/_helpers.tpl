{{- define "kns.labels" -}}
app.kubernetes.io/name: kube-nginx-sync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kns.selectorLabels" -}}
app.kubernetes.io/name: kube-nginx-sync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nginx
{{- end }}

{{/* The flags that render, watch and run share. */}}
{{- define "kns.generatorArgs" -}}
- --output=/etc/nginx/conf.d/default.conf
- --http-port={{ .Values.httpPort }}
- --https-port={{ .Values.httpsPort }}
- --shape={{ .Values.shape }}
- --selector={{ .Values.selector }}
- --default-upstream={{ .Values.defaultUpstream }}
{{- range .Values.namespaces }}
- --namespace={{ . }}
{{- end }}
{{- if .Values.template }}
- --template=/etc/kube-nginx-sync/template/default.conf.tmpl
{{- end }}
{{- if .Values.validate }}
- --validate
{{- end }}
{{- if .Values.ingress.className }}
- --ingress-class={{ .Values.ingress.className }}
{{- end }}
{{- end }}

{{- define "kns.watchArgs" -}}
- --debounce={{ .Values.debounce }}
- --max-delay={{ .Values.maxDelay }}
{{- if and .Values.ingress.className (or .Values.ingress.publishAddresses .Values.ingress.publishService) }}
{{- range .Values.ingress.publishAddresses }}
- --publish-address={{ . }}
{{- else }}
- --publish-service={{ .Release.Namespace }}/{{ .Release.Name }}
{{- end }}
- --election-namespace={{ .Release.Namespace }}
- --election-id={{ .Release.Name }}-ingress-status
- --election-lease-duration={{ .Values.ingress.leaseDuration }}
{{- end }}
{{- end }}

{{- define "kns.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "kns.generatorMounts" -}}
- name: conf
  mountPath: /etc/nginx/conf.d
{{- if .Values.template }}
- name: template
  mountPath: /etc/kube-nginx-sync/template
  readOnly: true
{{- end }}
{{- end }}

{{/* The generator sidecar; native: as an init container that keeps running. */}}
{{- define "kns.watchContainer" -}}
{{- $root := .root }}
- name: watch
  image: {{ .image }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
{{- if .native }}
  restartPolicy: Always
{{- end }}
  args:
    - watch
    {{- include "kns.generatorArgs" $root | nindent 4 }}
    {{- include "kns.watchArgs" $root | nindent 4 }}
    - --listen=:9090
  ports:
    - name: watch-metrics
      containerPort: 9090
  readinessProbe:
    httpGet: {path: /readyz, port: watch-metrics}
    periodSeconds: 5
  livenessProbe:
    httpGet: {path: /healthz, port: watch-metrics}
    periodSeconds: 10
    failureThreshold: 6
  volumeMounts: {{- include "kns.generatorMounts" $root | nindent 4 }}
  resources: {{- toYaml $root.Values.resources.generator | nindent 4 }}
  securityContext: {{- include "kns.securityContext" $root | nindent 4 }}
{{- end }}
