package model

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// SecretRef names a Secret.
type SecretRef struct {
	Namespace string
	Name      string
}

func (r SecretRef) String() string { return r.Namespace + "/" + r.Name }

// TLS is a host's HTTPS: a certificate and key that passed
// CheckCertificate.
type TLS struct {
	// Secret is where the certificate and key come from.
	Secret SecretRef
	// Certificate describes the server's certificate.
	Certificate CertificateInfo
	// PEM is what nginx loads: the certificate chain, then the private
	// key, each re-encoded from what was parsed (so nothing else of the
	// Secret reaches nginx).
	PEM Sensitive
	// Hash is the SHA-256 of PEM in hex: it names the file that holds it,
	// so that a new certificate is a new file.
	Hash string
	// HSTS is the Strict-Transport-Security header of the host's HTTPS
	// responses (ParseHSTS's canonical form), or "" for none.
	HSTS string
}

// CertificateInfo describes a certificate; nothing in it is secret.
type CertificateInfo struct {
	// Serial is the serial number in lower-case hex.
	Serial              string
	NotBefore, NotAfter time.Time
}

// HostCertificate is the HTTPS state of one host that asked for it.
type HostCertificate struct {
	Host string
	// Secret is the Secret the host's Services name.
	Secret SecretRef
	// Leaf describes the Secret's certificate, when it holds one that
	// parses (also when the host's HTTPS is left out for another reason).
	Leaf *CertificateInfo
	// Served says that the host is served over HTTPS.
	Served bool
	// Reason and Message say why the host's HTTPS is left out, or what
	// needs attention in a certificate that is served; both are empty
	// when all is well.
	Reason  Reason
	Message string
}

// Sensitive holds secret bytes, such as a private key. It prints as
// "[redacted]" with every fmt verb, in JSON and as text, so that it never
// reaches a log, an Event or a metric by accident; Bytes returns the
// bytes.
type Sensitive struct{ b []byte }

// NewSensitive wraps b (not copied).
func NewSensitive(b []byte) Sensitive { return Sensitive{b: b} }

// Bytes returns the secret bytes; callers must not modify them.
func (s Sensitive) Bytes() []byte { return s.b }

const redacted = "[redacted]"

func (Sensitive) String() string               { return redacted }
func (Sensitive) GoString() string             { return redacted }
func (Sensitive) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (Sensitive) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Sensitive) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Sensitive) LogValue() slog.Value         { return slog.StringValue(redacted) }

// Equal reports whether both hold the same bytes (go-cmp uses it).
func (s Sensitive) Equal(o Sensitive) bool { return string(s.b) == string(o.b) }

// CertificateExpiryWarning is how long before its expiry a certificate
// gets a Warning (ReasonCertificateExpiresSoon). cert-manager renews a
// 90-day certificate 30 days before it expires: one that is still not
// renewed two weeks before is stuck.
const CertificateExpiryWarning = 14 * 24 * time.Hour

// Bounds of a Secret's data: far above any real chain or key.
const (
	maxCertificateData = 256 << 10
	maxKeyData         = 64 << 10
	maxChain           = 16
)

// certificateError is a reason and a message why a certificate is left
// out, or a warning about one that is served.
type certificateError struct {
	reason  Reason
	message string
}

func (e *certificateError) Error() string { return e.message }

func invalidSecret(format string, args ...any) *certificateError {
	return &certificateError{reason: ReasonInvalidTLSSecret, message: fmt.Sprintf(format, args...)}
}

// checkCertificate checks a Secret's certificate and key for host, as of
// now (zero: no check against the time), and returns what nginx may load.
// It refuses, with a ReasonInvalidTLSSecret message:
//   - a Secret that is not of type kubernetes.io/tls, or lacks tls.crt or
//     tls.key, or holds more than 256 KiB and 64 KiB in them;
//   - a tls.crt with anything but 1 to 16 PEM CERTIFICATE blocks that
//     parse, without headers, each signed by the one after it (the
//     server's certificate first, then its issuers);
//   - a tls.key with anything but one unencrypted private key (PKCS #1,
//     PKCS #8 or SEC 1 EC; "EC PARAMETERS" blocks are skipped), or a key
//     that is not the certificate's (crypto/tls's check);
//   - what OpenSSL in its default security level would refuse to load,
//     which would make nginx refuse the whole config: RSA keys under
//     2048 bits, keys other than RSA, ECDSA and Ed25519, MD5 or SHA-1
//     signatures (except a self-signed root's);
//   - a certificate that does not cover host (its DNS names; a wildcard
//     host needs that wildcard name) or is not for server authentication.
//
// A certificate of the chain that has expired is refused with
// ReasonCertificateExpired. A certificate that is not valid yet, or
// expires within CertificateExpiryWarning, is returned with a warning
// (ReasonCertificateNotYetValid, ReasonCertificateExpiresSoon).
//
// The messages name no secret data, and quote what they show of the
// certificate (its names) with strconv.Quote.
func checkCertificate(secret *corev1.Secret, host string, now time.Time) (tlsOut *TLS, warning, err *certificateError) {
	if secret.Type != corev1.SecretTypeTLS {
		return nil, nil, invalidSecret("type %s, not %s", showValue(string(secret.Type)), corev1.SecretTypeTLS)
	}
	certData, keyData := secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]
	switch {
	case len(certData) == 0:
		return nil, nil, invalidSecret("no %s", corev1.TLSCertKey)
	case len(keyData) == 0:
		return nil, nil, invalidSecret("no %s", corev1.TLSPrivateKeyKey)
	case len(certData) > maxCertificateData:
		return nil, nil, invalidSecret("%s is larger than %d KiB", corev1.TLSCertKey, maxCertificateData>>10)
	case len(keyData) > maxKeyData:
		return nil, nil, invalidSecret("%s is larger than %d KiB", corev1.TLSPrivateKeyKey, maxKeyData>>10)
	}
	chain, err := parseChain(certData)
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKey(keyData)
	if err != nil {
		return nil, nil, err
	}
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	certPEM := slices.Clip(out)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
	if _, kerr := tls.X509KeyPair(certPEM, keyPEM); kerr != nil {
		return nil, nil, invalidSecret("%s is not the key of the certificate in %s", corev1.TLSPrivateKeyKey, corev1.TLSCertKey)
	}
	leaf := chain[0]
	if err := covers(leaf, host); err != nil {
		return nil, nil, err
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, nil, invalidSecret("the certificate is not for server authentication (its extended key usage lacks serverAuth)")
	}
	if !now.IsZero() {
		for i, c := range chain {
			if selfSigned(c) && i > 0 {
				continue // a root: clients use their own copy
			}
			if now.After(c.NotAfter) {
				what := "the certificate"
				if i > 0 {
					what = fmt.Sprintf("certificate %d of %s (an issuer)", i+1, corev1.TLSCertKey)
				}
				return nil, nil, &certificateError{reason: ReasonCertificateExpired,
					message: fmt.Sprintf("%s expired on %s", what, c.NotAfter.UTC().Format(time.RFC3339))}
			}
		}
		switch {
		case now.Before(leaf.NotBefore):
			warning = &certificateError{reason: ReasonCertificateNotYetValid,
				message: fmt.Sprintf("the certificate is valid from %s only; served, clients may refuse it until then", leaf.NotBefore.UTC().Format(time.RFC3339))}
		case leaf.NotAfter.Sub(now) <= CertificateExpiryWarning:
			warning = &certificateError{reason: ReasonCertificateExpiresSoon,
				message: fmt.Sprintf("the certificate expires on %s, in %s; is its renewal stuck?", leaf.NotAfter.UTC().Format(time.RFC3339), leaf.NotAfter.Sub(now).Round(time.Minute))}
		}
	}
	pemData := append(out, keyPEM...)
	sum := sha256.Sum256(pemData)
	return &TLS{
		Certificate: certificateInfo(leaf),
		PEM:         NewSensitive(pemData),
		Hash:        hex.EncodeToString(sum[:]),
	}, warning, nil
}

func certificateInfo(c *x509.Certificate) CertificateInfo {
	return CertificateInfo{Serial: c.SerialNumber.Text(16), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}
}

// LeafInfo describes the first certificate of a Secret's tls.crt, if it
// parses.
func LeafInfo(secret *corev1.Secret) (CertificateInfo, bool) {
	block, _ := pem.Decode(secret.Data[corev1.TLSCertKey])
	if block == nil || block.Type != "CERTIFICATE" {
		return CertificateInfo{}, false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return CertificateInfo{}, false
	}
	return certificateInfo(c), true
}

// parseChain parses tls.crt (see CheckCertificate).
func parseChain(data []byte) ([]*x509.Certificate, *certificateError) {
	var chain []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n := len(chain) + 1
		switch {
		case block.Type != "CERTIFICATE":
			return nil, invalidSecret("%s holds a %s block (block %d); only CERTIFICATE blocks belong there", corev1.TLSCertKey, showValue(block.Type), n)
		case len(block.Headers) > 0:
			return nil, invalidSecret("%s: certificate %d has PEM headers", corev1.TLSCertKey, n)
		case n > maxChain:
			return nil, invalidSecret("%s holds more than %d certificates", corev1.TLSCertKey, maxChain)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, invalidSecret("%s: certificate %d does not parse: %v", corev1.TLSCertKey, n, err)
		}
		if err := strongEnough(c); err != nil {
			return nil, invalidSecret("%s: certificate %d: %v", corev1.TLSCertKey, n, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, invalidSecret("%s holds no PEM CERTIFICATE block", corev1.TLSCertKey)
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, invalidSecret("%s: certificate %d is not signed by certificate %d (the server's certificate comes first, then each one's issuer): %v",
				corev1.TLSCertKey, i+1, i+2, err)
		}
	}
	return chain, nil
}

// strongEnough refuses what OpenSSL refuses to load at its default
// security level (2 on Debian): nginx would refuse the whole config.
func strongEnough(c *x509.Certificate) error {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return fmt.Errorf("its RSA key has %d bits; at least 2048 are needed", n)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("its key is %s; RSA, ECDSA or Ed25519 are needed", c.PublicKeyAlgorithm)
	}
	if selfSigned(c) {
		return nil // a root's own signature is never checked
	}
	switch c.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.DSAWithSHA256, x509.ECDSAWithSHA1, x509.UnknownSignatureAlgorithm:
		return fmt.Errorf("it is signed with %s, which is too weak", c.SignatureAlgorithm)
	}
	return nil
}

// selfSigned reports a certificate whose issuer is its own subject.
func selfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject)
}

// parseKey parses tls.key and returns the key in PKCS #8 DER.
func parseKey(data []byte) ([]byte, *certificateError) {
	var found *pem.Block
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "EC PARAMETERS":
			continue // what openssl ecparam -genkey writes first
		case block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "":
			return nil, invalidSecret("%s is encrypted; nginx needs it unencrypted", corev1.TLSPrivateKeyKey)
		case found != nil:
			return nil, invalidSecret("%s holds more than one PEM block", corev1.TLSPrivateKeyKey)
		}
		found = block
	}
	if found == nil {
		return nil, invalidSecret("%s holds no PEM private key", corev1.TLSPrivateKeyKey)
	}
	var key any
	var err error
	switch found.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(found.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(found.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(found.Bytes)
	default:
		return nil, invalidSecret("%s holds a %s block, not a private key", corev1.TLSPrivateKeyKey, showValue(found.Type))
	}
	if err != nil {
		// The parser's error may quote the key's bytes: not shown.
		return nil, invalidSecret("%s: the %s does not parse", corev1.TLSPrivateKeyKey, strings.ToLower(found.Type))
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, invalidSecret("%s: a key of this kind cannot be used", corev1.TLSPrivateKeyKey)
	}
	return der, nil
}

// covers checks that the certificate is valid for host: an exact host by
// its DNS names (wildcards included, as clients match them); a wildcard
// host only by that same wildcard name, since nginx serves it for every
// name under it.
func covers(c *x509.Certificate, host string) *certificateError {
	if strings.HasPrefix(host, "*.") {
		if slices.ContainsFunc(c.DNSNames, func(n string) bool { return strings.EqualFold(n, host) }) {
			return nil
		}
	} else if c.VerifyHostname(host) == nil {
		return nil
	}
	names := make([]string, 0, 4)
	for i, n := range c.DNSNames {
		if i == 4 {
			names = append(names, "...")
			break
		}
		names = append(names, showValue(n))
	}
	if len(names) == 0 {
		return invalidSecret("the certificate does not cover host %s: it has no DNS names (the common name is not used)", host)
	}
	return invalidSecret("the certificate does not cover host %s: its names are %s", host, strings.Join(names, ", "))
}
