// Package tlsfiles reads the PEM files graygw's TLS configurations name: the
// CA bundle a peer's certificate must chain to, and a client's certificate.
// Every client and server of graygw (the CLI, the controller, the agent, the
// speaker, the etcd store) loads its bundle here, so a file without a
// certificate is refused the same way everywhere.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// CertPool reads the PEM CA bundle at path into a pool. A file that holds no
// PEM certificate is an error, not an empty pool that would refuse every peer.
func CertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Client is a mutual-TLS client's configuration: its certificate and key
// (certFile, keyFile) and the CA bundle (caFile) the server's certificate
// must chain to; TLS 1.2 at least. keyOpt and caOpt are how the caller's
// configuration names the files ("--tls-cert/--tls-key", "--tls-ca"): an
// error starts with the one that failed.
func Client(certFile, keyFile, caFile, keyOpt, caOpt string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyOpt, err)
	}
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caOpt, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
