package testbed

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// A minimal WebSocket (RFC 6455), enough to prove that a proxy carries one:
// the opening handshake, unfragmented frames of any length, masking, ping,
// pong and close. No extensions, no subprotocols, no fragmented messages.

// websocketGUID is the fixed string of RFC 6455 section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Frame opcodes.
const (
	OpText   byte = 0x1
	OpBinary byte = 0x2
	OpClose  byte = 0x8
	OpPing   byte = 0x9
	OpPong   byte = 0xA
)

// maxFrame bounds a frame's payload, so a broken peer cannot make us
// allocate without end.
const maxFrame = 16 << 20

func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// isWebSocketUpgrade says whether r asks to become a WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Upgrade", "websocket") && headerHasToken(r.Header, "Connection", "upgrade")
}

// serveWebSocketEcho completes the handshake and sends every text or
// binary message back, until the peer closes.
func serveWebSocketEcho(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" || r.Header.Get("Sec-WebSocket-Version") != "13" {
		http.Error(w, "bad WebSocket handshake", http.StatusBadRequest)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", websocketAccept(key))
	if err := brw.Flush(); err != nil {
		return
	}
	ws := &WebSocket{conn: conn, br: brw.Reader, client: false}
	for {
		op, payload, err := ws.readFrame()
		if err != nil {
			return
		}
		switch op {
		case OpText, OpBinary:
			err = ws.writeFrame(op, payload)
		case OpPing:
			err = ws.writeFrame(OpPong, payload)
		case OpClose:
			_ = ws.writeFrame(OpClose, payload)
			return
		}
		if err != nil {
			return
		}
	}
}

// WebSocket is one end of a WebSocket connection.
type WebSocket struct {
	conn   net.Conn
	br     *bufio.Reader
	client bool // a client masks what it sends
}

// DialWebSocket opens a WebSocket to ws://addr<path> with the given Host
// header ("" for addr), and checks the handshake's answer.
func DialWebSocket(addr, host, path string, timeout time.Duration) (*WebSocket, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	if host == "" {
		host = addr
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %s %q", resp.Status, body)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), websocketAccept(key); got != want {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	_ = conn.SetDeadline(time.Time{})
	return &WebSocket{conn: conn, br: br, client: true}, nil
}

// SetDeadline sets the deadline of the reads and writes that follow.
func (ws *WebSocket) SetDeadline(t time.Time) error { return ws.conn.SetDeadline(t) }

// WriteMessage sends one unfragmented message (OpText or OpBinary).
func (ws *WebSocket) WriteMessage(op byte, payload []byte) error { return ws.writeFrame(op, payload) }

// ReadMessage returns the next text or binary message. It answers pings;
// a close frame from the peer is io.EOF.
func (ws *WebSocket) ReadMessage() (op byte, payload []byte, err error) {
	for {
		op, payload, err := ws.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case OpText, OpBinary:
			return op, payload, nil
		case OpPing:
			if err := ws.writeFrame(OpPong, payload); err != nil {
				return 0, nil, err
			}
		case OpClose:
			return 0, nil, io.EOF
		}
	}
}

// Close sends a close frame and closes the connection.
func (ws *WebSocket) Close() error {
	_ = ws.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = ws.writeFrame(OpClose, []byte{0x03, 0xe8}) // 1000: normal closure
	return ws.conn.Close()
}

func (ws *WebSocket) writeFrame(op byte, payload []byte) error {
	header := make([]byte, 2, 14)
	header[0] = 0x80 | op // FIN
	var maskBit byte
	if ws.client {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		header[1] = maskBit | byte(n)
	case n <= 0xffff:
		header[1] = maskBit | 126
		header = binary.BigEndian.AppendUint16(header, uint16(n))
	default:
		header[1] = maskBit | 127
		header = binary.BigEndian.AppendUint64(header, uint64(n))
	}
	frame := append(header, payload...)
	if ws.client {
		var mask [4]byte
		_, _ = rand.Read(mask[:])
		masked := make([]byte, 0, len(frame)+4)
		masked = append(append(masked, header...), mask[:]...)
		for i, c := range payload {
			masked = append(masked, c^mask[i%4])
		}
		frame = masked
	}
	_, err := ws.conn.Write(frame)
	return err
}

func (ws *WebSocket) readFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(ws.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 {
		return 0, nil, errors.New("websocket: fragmented frame or reserved bits set")
	}
	op = h[0] & 0x0f
	masked := h[1]&0x80 != 0
	if masked == ws.client {
		return 0, nil, fmt.Errorf("websocket: frame masked=%v, want %v", masked, !ws.client)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(ws.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(ws.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > maxFrame {
		return 0, nil, fmt.Errorf("websocket: frame of %d bytes", n)
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(ws.br, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(ws.br, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return op, payload, nil
}
