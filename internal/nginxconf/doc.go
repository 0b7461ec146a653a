// Package nginxconf renders a model.Config into the text of an nginx config
// file (the default.conf that nginx's http block includes).
//
// Rendering is pure: no I/O, and the same Config always gives the same bytes.
// The default template is embedded; a user's template works over the same
// View. Every rendered file starts with a header line that names the SHA-256
// of the rest of the file, so a reader can tell a complete file from a torn
// one and two replicas can compare what they serve.
package nginxconf
