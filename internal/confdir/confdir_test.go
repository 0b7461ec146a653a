package confdir

import "testing"

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		hidden, ours bool
	}{
		{"default.conf", false, false},
		{StatusFile, true, true},
		{"..data", true, false},
		{"..2026_11_30_06_00_00.123", true, false},
		{LastGood("default.conf"), true, true},
		{TempPattern("default.conf"), true, true},
		{TempPattern(StatusFile), true, true},
	} {
		if IsHidden(tc.name) != tc.hidden || IsOurs(tc.name) != tc.ours {
			t.Errorf("%q: hidden %v, ours %v; want %v, %v", tc.name, IsHidden(tc.name), IsOurs(tc.name), tc.hidden, tc.ours)
		}
	}
	if got := LastGood("/etc/nginx/conf.d/default.conf"); got != "/etc/nginx/conf.d/.default.conf.last-good" {
		t.Errorf("LastGood = %q", got)
	}
	if got := TempPattern(StatusFile); got != ".kube-nginx-sync-reload-status.json.tmp-*" {
		t.Errorf("TempPattern(StatusFile) = %q", got)
	}
}
