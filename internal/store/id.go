package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// Run ids are "r-" and 26 characters of Crockford base32 over 48 bits of
// milliseconds and 80 random bits (the ULID layout): they sort by creation
// time as strings, and the random part keeps ids from different processes
// apart without coordination.
const runIDPrefix = "r-"

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var idState struct {
	sync.Mutex
	lastMS uint64
	last   [10]byte // random part of the last id
}

// NewRunID returns a fresh run id. Ids made by one process are strictly
// increasing, also within one millisecond (the random part is incremented).
func NewRunID() string {
	return runIDPrefix + newULID(time.Now())
}

// RunIDFor returns the run id owed to key at time at, the same wherever
// and however often it is asked: a scheduled trigger's fire is the run of
// id RunIDFor(tick, "trigger/ID/TICK"), so of several nodes firing one
// tick only the first creates the run and the others get ErrConflict.
func RunIDFor(at time.Time, key string) string {
	sum := sha256.Sum256([]byte(key))
	ms := uint64(at.UnixMilli())
	var b [16]byte
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	copy(b[6:], sum[:10])
	return runIDPrefix + encodeBase32(b)
}

func newULID(now time.Time) string {
	ms := uint64(now.UnixMilli())
	idState.Lock()
	var r [10]byte
	if ms <= idState.lastMS {
		ms = idState.lastMS
		r = idState.last
		for i := len(r) - 1; i >= 0; i-- { // increment, carrying
			r[i]++
			if r[i] != 0 {
				break
			}
		}
	} else {
		rand.Read(r[:])
	}
	idState.lastMS, idState.last = ms, r
	idState.Unlock()

	var b [16]byte
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	copy(b[6:], r[:])
	return encodeBase32(b)
}

// encodeBase32 writes 128 bits as 26 Crockford base32 digits, most
// significant first (the first digit carries the top 3 bits).
func encodeBase32(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
