package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// explainProxy prints a route's own proxy settings (from its Service's
// annotations) next to the defaults of the others, or nothing when the
// route has none.
func explainProxy(w io.Writer, p model.ProxySettings) {
	if p.IsZero() {
		return
	}
	timeout := func(d time.Duration) string {
		switch {
		case d == 0:
			return "60s (default)"
		case d%time.Hour == 0:
			return strconv.Itoa(int(d/time.Hour)) + "h"
		case d%time.Minute == 0:
			return strconv.Itoa(int(d/time.Minute)) + "m"
		}
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	body := "1m (default)"
	switch n := p.MaxBodySize; {
	case n == model.NoBodyLimit:
		body = "no limit"
	case n == 0:
	case n%(1<<30) == 0:
		body = strconv.FormatInt(n>>30, 10) + "g"
	case n%(1<<20) == 0:
		body = strconv.FormatInt(n>>20, 10) + "m"
	case n%(1<<10) == 0:
		body = strconv.FormatInt(n>>10, 10) + "k"
	default:
		body = strconv.FormatInt(n, 10) + " bytes"
	}
	fmt.Fprintf(w, "    proxy: read timeout %s, send timeout %s, max body size %s\n", timeout(p.ReadTimeout), timeout(p.SendTimeout), body)
}
