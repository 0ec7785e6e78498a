// Package fakesftp is a real SFTP server for tests, in process: SSH from
// golang.org/x/crypto/ssh with a fresh ed25519 host key, the sftp
// subsystem from github.com/pkg/sftp serving a temporary folder of the real
// file system. It checks a password or a public key, and can drop a
// connection after it has received a number of bytes, the way a flaky
// network does mid-upload.
package fakesftp

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Server is a running SFTP server. Its methods are safe for concurrent use.
type Server struct {
	// Root is the folder the server serves; remote relative paths resolve
	// under it.
	Root string
	ln   net.Listener
	key  ssh.Signer
	cfg  *ssh.ServerConfig

	mu        sync.Mutex
	dropAfter []int64 // per next connection: close after this many bytes read (0: never)
	conns     int
	auths     atomic.Int64
	received  atomic.Int64
	wg        sync.WaitGroup
}

// Start starts a server accepting user with password (when non-empty) or
// the public key (when non-nil); it stops when the test ends.
func Start(tb testing.TB, user, password string, key ssh.PublicKey) *Server {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Root: tb.TempDir(), key: signer}
	s.cfg = &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			s.auths.Add(1)
			if password != "" && c.User() == user && string(pw) == password {
				return nil, nil
			}
			return nil, errors.New("denied")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			s.auths.Add(1)
			if key != nil && c.User() == user && string(k.Marshal()) == string(key.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("denied")
		},
	}
	s.cfg.AddHostKey(signer)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(func() {
		_ = s.ln.Close()
		s.wg.Wait()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Fingerprint is the host key's SHA256 fingerprint, as ssh-keygen -lf
// prints it.
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.key.PublicKey()) }

// DropNext makes the next connection close once it has received n bytes
// from the client (handshake included).
func (s *Server) DropNext(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAfter = append(s.dropAfter, n)
}

// Connections counts the connections accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Auths counts the authentication attempts (password or key offered).
func (s *Server) Auths() int64 { return s.auths.Load() }

// Received counts the bytes received on every connection.
func (s *Server) Received() int64 { return s.received.Load() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		var drop int64
		if len(s.dropAfter) > 0 {
			drop, s.dropAfter = s.dropAfter[0], s.dropAfter[1:]
		}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(&countingConn{Conn: c, total: &s.received, limit: drop})
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range creqs {
				ok := req.Type == "subsystem" && len(req.Payload) >= 4 &&
					string(req.Payload[4:4+min(int(binary.BigEndian.Uint32(req.Payload)), len(req.Payload)-4)]) == "sftp"
				_ = req.Reply(ok, nil)
			}
		}()
		srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.Root))
		if err != nil {
			_ = ch.Close()
			return
		}
		if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
			_ = srv.Close()
		}
		_ = ch.Close()
	}
}

// countingConn counts what the client sends and closes the connection
// after limit bytes (0: never).
type countingConn struct {
	net.Conn
	total *atomic.Int64
	limit int64
	n     int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	if c.limit > 0 {
		if c.n >= c.limit {
			_ = c.Conn.Close()
			return 0, io.EOF
		}
		p = p[:min(int64(len(p)), c.limit-c.n)]
	}
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	c.total.Add(int64(n))
	return n, err
}

// WithoutPosixRename makes servers started in this test binary advertise no
// posix-rename@openssh.com extension until the test ends, like servers
// that only speak plain SFTP v3. pkg/sftp keeps the advertised extensions
// in a package variable, so the test must not run in parallel with other
// SFTP tests.
func WithoutPosixRename(tb testing.TB) {
	tb.Helper()
	if err := sftp.SetSFTPExtensions("hardlink@openssh.com", "statvfs@openssh.com"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = sftp.SetSFTPExtensions("hardlink@openssh.com", "posix-rename@openssh.com", "statvfs@openssh.com")
	})
}
