package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CA is a certificate authority of a test: it issues server certificates
// as cert-manager's issuers would, for kubernetes.io/tls Secrets.
type CA struct {
	Cert *x509.Certificate
	// PEM is the CA's certificate, for a client's trust store
	// (curl --cacert).
	PEM []byte
	key crypto.Signer
}

// serials numbers the certificates of all CAs of a process, so that
// each one's serial tells it apart.
var serials atomic.Int64

// NewCA makes a CA with an ECDSA P-256 key, valid from an hour ago for a
// year.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serials.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// Pool is a certificate pool that trusts only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issued is a certificate and its key, PEM-encoded as a kubernetes.io/tls
// Secret holds them.
type Issued struct {
	// CertPEM is the server's certificate (tls.crt).
	CertPEM []byte
	// KeyPEM is its private key (tls.key).
	KeyPEM []byte
	// Serial is the certificate's serial number.
	Serial *big.Int
	Cert   *x509.Certificate
}

// IssueOptions tune Issue.
type IssueOptions struct {
	// NotBefore and NotAfter default to an hour ago and 90 days on.
	NotBefore, NotAfter time.Time
	// RSABits, when set, makes an RSA key of that size instead of an
	// ECDSA P-256 one.
	RSABits int
	// WithCA appends the CA's certificate to CertPEM, as a chain.
	WithCA bool
}

// Issue issues a server certificate for hosts (DNS names; "*.example.com"
// for a wildcard).
func (ca *CA) Issue(hosts []string, opts IssueOptions) (Issued, error) {
	var key crypto.Signer
	var err error
	if opts.RSABits > 0 {
		key, err = rsa.GenerateKey(rand.Reader, opts.RSABits)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return Issued{}, err
	}
	now := time.Now()
	if opts.NotBefore.IsZero() {
		opts.NotBefore = now.Add(-time.Hour)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serials.Add(1)),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    opts.NotBefore,
		NotAfter:     opts.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return Issued{}, fmt.Errorf("issue certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Issued{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Issued{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if opts.WithCA {
		certPEM = append(certPEM, ca.PEM...)
	}
	return Issued{
		CertPEM: certPEM,
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Serial:  tmpl.SerialNumber,
		Cert:    cert,
	}, nil
}

// TLSSecret is a kubernetes.io/tls Secret named name holding the
// certificate.
func TLSSecret(name string, c Issued) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: c.CertPEM, corev1.TLSPrivateKeyKey: c.KeyPEM},
	}
}

// CertificateFiles lists the certificate files (confdir.IsCertificateFile)
// in dir.
func CertificateFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if confdir.IsCertificateFile(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}
