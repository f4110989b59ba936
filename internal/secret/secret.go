// Package secret encrypts values at rest with AES-256-GCM envelopes: each
// value gets its own random data key, and the data key is wrapped by a
// master key named by a key id. Rotating the master key only rewraps data
// keys; old master keys stay in the keyring until nothing refers to them.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a master key and of a data key: AES-256.
const KeySize = 32

// prefix marks a sealed value and its format version.
const prefix = "obs1"

// ErrUnknownKey is returned when a value was sealed with a key id the
// keyring does not hold.
var ErrUnknownKey = errors.New("sealed with a master key that is not in the keyring")

// validKeyID reports whether id is 1-64 letters, digits, '-' or '_'. A loop,
// not `^[A-Za-z0-9_-]{1,64}$`: that regexp compiles 64 copies of its class
// when the package initialises, 2 ms of every command's start-up.
func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Keyring holds master keys by id; Primary seals new values.
type Keyring struct {
	primary string
	keys    map[string][]byte
}

// NewKeyring returns a keyring holding one key, the primary; Add older
// keys after it so values sealed with them still open.
func NewKeyring(primaryID string, primary []byte) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}}
	if err := k.Add(primaryID, primary); err != nil {
		return nil, err
	}
	k.primary = primaryID
	return k, nil
}

// Add puts a (non-primary) key into the keyring so values sealed with it
// can still be opened.
func (k *Keyring) Add(id string, key []byte) error {
	if !validKeyID(id) {
		return fmt.Errorf("master key id %q: use 1-64 letters, digits, '-' or '_'", id)
	}
	if len(key) != KeySize {
		return fmt.Errorf("master key %q is %d bytes; it must be %d random bytes (base64-encoded in files and env vars)", id, len(key), KeySize)
	}
	k.keys[id] = append([]byte(nil), key...)
	return nil
}

// Primary returns the id of the key that seals new values.
func (k *Keyring) Primary() string { return k.primary }

// Seal encrypts plaintext. The result is text safe to store in any column:
// "obs1.<key id>.<wrapped data key>.<ciphertext>", both parts base64 with
// their nonces in front. aad binds the value to where it is stored (e.g. the
// variable's name and scope) so a sealed value cannot be moved elsewhere.
func (k *Keyring) Seal(plaintext, aad []byte) (string, error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return "", fmt.Errorf("generate data key: %w", err)
	}
	wrapped, err := gcmSeal(k.keys[k.primary], dek, []byte(k.primary))
	if err != nil {
		return "", err
	}
	ct, err := gcmSeal(dek, plaintext, aad)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return strings.Join([]string{prefix, k.primary, enc.EncodeToString(wrapped), enc.EncodeToString(ct)}, "."), nil
}

// Open decrypts a value made by Seal with the same aad.
func (k *Keyring) Open(sealed string, aad []byte) ([]byte, error) {
	keyID, wrapped, ct, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	master, ok := k.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("key id %q: %w; add that key to OPSBOOK_MASTER_KEY_FILE", keyID, ErrUnknownKey)
	}
	dek, err := gcmOpen(master, wrapped, []byte(keyID))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key with master key %q: %w", keyID, err)
	}
	pt, err := gcmOpen(dek, ct, aad)
	if err != nil {
		return nil, fmt.Errorf("decrypt value: %w", err)
	}
	return pt, nil
}

// KeyID returns the id of the master key a sealed value depends on.
func KeyID(sealed string) (string, error) {
	id, _, _, err := parse(sealed)
	return id, err
}

// Rewrap re-seals the value's data key under the primary master key without
// touching the ciphertext. It is how rotation proceeds value by value.
func (k *Keyring) Rewrap(sealed string) (string, error) {
	keyID, wrapped, ct, err := parse(sealed)
	if err != nil {
		return "", err
	}
	if keyID == k.primary {
		return sealed, nil
	}
	master, ok := k.keys[keyID]
	if !ok {
		return "", fmt.Errorf("key id %q: %w", keyID, ErrUnknownKey)
	}
	dek, err := gcmOpen(master, wrapped, []byte(keyID))
	if err != nil {
		return "", fmt.Errorf("unwrap data key with master key %q: %w", keyID, err)
	}
	rewrapped, err := gcmSeal(k.keys[k.primary], dek, []byte(k.primary))
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return strings.Join([]string{prefix, k.primary, enc.EncodeToString(rewrapped), enc.EncodeToString(ct)}, "."), nil
}

func parse(sealed string) (keyID string, wrapped, ct []byte, err error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 4 || parts[0] != prefix {
		return "", nil, nil, errors.New("not a sealed value (expected obs1.<key>.<data key>.<ciphertext>)")
	}
	enc := base64.RawURLEncoding
	if wrapped, err = enc.DecodeString(parts[2]); err != nil {
		return "", nil, nil, fmt.Errorf("sealed value: data key: %w", err)
	}
	if ct, err = enc.DecodeString(parts[3]); err != nil {
		return "", nil, nil, fmt.Errorf("sealed value: ciphertext: %w", err)
	}
	return parts[1], wrapped, ct, nil
}

func gcmSeal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

func gcmOpen(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("ciphertext too short")
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
	if err != nil {
		return nil, errors.New("authentication failed (wrong key or tampered value)")
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// KeyFileName is the master key file created in the data directory when no
// key is configured.
const KeyFileName = "master.key"

// LoadKeyring finds the master keys, in this order:
//   - OPSBOOK_MASTER_KEY: one key, "<id>:<base64>" or just "<base64>" (id "default");
//   - OPSBOOK_MASTER_KEY_FILE: a key file;
//   - <dataDir>/master.key, generated with mode 0600 on first start.
//
// A key file has one key per line, "<id> <base64>"; the first line is the
// primary key, the others only open older values. Blank lines and lines
// starting with # are ignored. getenv is os.Getenv outside tests.
func LoadKeyring(dataDir string, getenv func(string) string) (*Keyring, string, error) {
	if v := strings.TrimSpace(getenv("OPSBOOK_MASTER_KEY")); v != "" {
		id, b64, ok := strings.Cut(v, ":")
		if !ok {
			id, b64 = "default", v
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, "", fmt.Errorf("OPSBOOK_MASTER_KEY: %w", err)
		}
		k, err := NewKeyring(id, key)
		return k, "OPSBOOK_MASTER_KEY", err
	}
	path := getenv("OPSBOOK_MASTER_KEY_FILE")
	if path == "" {
		path = filepath.Join(dataDir, KeyFileName)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := GenerateKeyFile(path, "k1"); err != nil {
				return nil, "", err
			}
		}
	}
	k, err := ReadKeyFile(path)
	return k, path, err
}

// GenerateKeyFile writes a new random master key to path with mode 0600,
// refusing to overwrite an existing file.
func GenerateKeyFile(path, id string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate master key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "# opsbook master key: back it up; without it sensitive variables cannot be read.\n%s %s\n", id, base64.StdEncoding.EncodeToString(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write master key file %s: %w", path, err)
	}
	return nil
}

// ReadKeyFile reads a key file (see LoadKeyring). It refuses a file that
// others can read.
func ReadKeyFile(path string) (*Keyring, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %v; run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	var k *Keyring
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected \"<key id> <base64 key>\"", path, i+1)
		}
		key, err := decodeKey(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		if k == nil {
			if k, err = NewKeyring(id, key); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
			}
			continue
		}
		if err := k.Add(id, key); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
	}
	if k == nil {
		return nil, fmt.Errorf("master key file %s holds no key", path)
	}
	return k, nil
}

func decodeKey(b64 string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %w (generate one with: head -c32 /dev/urandom | base64)", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d (generate one with: head -c32 /dev/urandom | base64)", len(key), KeySize)
	}
	return key, nil
}

// MAC authenticates data for purpose with a key derived from the primary
// master key (HMAC-SHA256 under HMAC(master, "opsbook mac "+purpose)). The
// result names the key, "<key id>:<hex>", so CheckMAC still works after a
// rotation while the old key stays in the keyring. A database that does
// not hold the master key cannot forge it.
func (k *Keyring) MAC(purpose string, data []byte) string {
	return k.primary + ":" + hex.EncodeToString(macWith(k.keys[k.primary], purpose, data))
}

// CheckMAC reports whether mac is MAC(purpose, data) under a key of the
// keyring.
func (k *Keyring) CheckMAC(purpose string, data []byte, mac string) error {
	id, h, ok := strings.Cut(mac, ":")
	if !ok {
		return errors.New("not a MAC made by opsbook")
	}
	key, found := k.keys[id]
	if !found {
		return fmt.Errorf("%w (%s)", ErrUnknownKey, id)
	}
	got, err := hex.DecodeString(h)
	if err != nil || !hmac.Equal(got, macWith(key, purpose, data)) {
		return errors.New("MAC does not match")
	}
	return nil
}

func macWith(master []byte, purpose string, data []byte) []byte {
	d := hmac.New(sha256.New, master)
	d.Write([]byte("opsbook mac " + purpose))
	m := hmac.New(sha256.New, d.Sum(nil))
	m.Write(data)
	return m.Sum(nil)
}
