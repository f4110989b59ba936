package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors shared by both dialects; test with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("already exists")
	ErrLocked    = errors.New("held by another live process")
	ErrAmbiguous = errors.New("ambiguous id prefix")
	ErrInvalid   = errors.New("invalid")
)

// AmbiguousIDError is returned by GetRun for a prefix that matches more
// than one run. It wraps ErrAmbiguous.
type AmbiguousIDError struct {
	Prefix     string
	Candidates []string // at most maxCandidates, newest first
}

func (e *AmbiguousIDError) Error() string {
	return fmt.Sprintf("run id %q is ambiguous, it matches %s; type more characters of the id",
		e.Prefix, strings.Join(e.Candidates, ", "))
}

func (e *AmbiguousIDError) Unwrap() error { return ErrAmbiguous }

// mapError translates driver errors into the shared sentinels, keeping the
// driver error in the chain for details.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case "55P03": // lock_not_available
			return fmt.Errorf("%w: %w", ErrLocked, err)
		}
		return err
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	return err
}
