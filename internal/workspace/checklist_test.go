package workspace

import (
	"testing"
)

func TestChecklistItemsOfTemplates(t *testing.T) {
	for _, lang := range Langs {
		t.Run(lang, func(t *testing.T) {
			text, _, err := (&Workspace{Dir: t.TempDir()}).Template(lang, TemplateChecklist)
			if err != nil {
				t.Fatal(err)
			}
			items := ChecklistItems([]byte(text))
			if len(items) != len(PreExecutionItems) {
				t.Fatalf("items = %+v", items)
			}
			for i, it := range items {
				if it.ID != PreExecutionItems[i] || it.Checked || it.Text == "" || it.Line == 0 {
					t.Errorf("item %d = %+v, want id %s", i, it, PreExecutionItems[i])
				}
			}
		})
	}
}

func TestChecklistItems(t *testing.T) {
	src := "# x\n- [x] `backups-done` Backups\n* [ ] `a-1` A\n- [ ] no id\n```\n- [ ] `in-fence` no\n```\n  - [X] `nested` Nested\n"
	items := ChecklistItems([]byte(src))
	want := []ChecklistItem{{"backups-done", "Backups", true, 2}, {"a-1", "A", false, 3}, {"nested", "Nested", true, 8}}
	if len(items) != len(want) {
		t.Fatalf("items = %+v", items)
	}
	for i := range want {
		if items[i] != want[i] {
			t.Errorf("item %d = %+v, want %+v", i, items[i], want[i])
		}
	}
}
