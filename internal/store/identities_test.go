package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

func TestUserIdentities(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const issuer = "https://idp.example"
		if _, err := s.UserByIdentity(ctx, issuer, "sub-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown identity: %v, want ErrNotFound", err)
		}
		if err := s.CreateUser(ctx, &store.User{Name: "alice", PasswordHash: "$argon2id$x"}); err != nil {
			t.Fatal(err)
		}
		// A taken name fails without leaving a half-linked identity behind.
		if err := s.CreateIdentityUser(ctx, &store.User{Name: "alice"}, issuer, "sub-1"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("taken name: %v, want ErrConflict", err)
		}
		if _, err := s.UserByIdentity(ctx, issuer, "sub-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after a refused create: %v, want ErrNotFound", err)
		}
		u := &store.User{Name: "alice-2", Display: "Alice"}
		if err := s.CreateIdentityUser(ctx, u, issuer, "sub-1"); err != nil {
			t.Fatal(err)
		}
		got, err := s.UserByIdentity(ctx, issuer, "sub-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || got.Name != "alice-2" || got.PasswordHash != "" {
			t.Fatalf("found %+v, want alice-2 without a password", got)
		}
		// The same subject at another issuer is another person.
		if _, err := s.UserByIdentity(ctx, "https://other.example", "sub-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other issuer: %v, want ErrNotFound", err)
		}
		if err := s.CreateIdentityUser(ctx, &store.User{Name: "bob"}, issuer, "sub-1"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("linking a subject twice: %v, want ErrConflict", err)
		}
		if _, err := s.GetUserByName(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bob was created although the link failed: %v", err)
		}
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByIdentity(ctx, issuer, "sub-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after deleting the user: %v, want ErrNotFound", err)
		}
	})
}
