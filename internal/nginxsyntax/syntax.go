// Package nginxsyntax parses the nginx configuration grammar into a tree
// of directives: just enough to check what a rendered config contains
// (the tests prove that no value from a Service can add, remove or alter a
// directive), not a validator of nginx's semantics.
package nginxsyntax

import (
	"fmt"
	"strings"
)

// Directive is one simple directive ("name args;") or block directive
// ("name args { ... }").
type Directive struct {
	Name string
	Args []string
	// Block is nil for a simple directive, and non-nil (maybe empty) for a
	// block directive.
	Block []Directive
	// Lua is the body of a *_by_lua_block directive, which is Lua code,
	// not directives (Block is then empty), without the white space
	// around it.
	Lua  string
	Line int
}

// String renders the directive on one line, arguments quoted when they
// need it, for messages and comparisons.
func (d Directive) String() string {
	var b strings.Builder
	b.WriteString(quoteIfNeeded(d.Name))
	for _, a := range d.Args {
		b.WriteByte(' ')
		b.WriteString(quoteIfNeeded(a))
	}
	if d.Block == nil {
		b.WriteByte(';')
		return b.String()
	}
	b.WriteString(" {")
	if d.Lua != "" {
		// On a line of its own: its last line may be a Lua comment.
		b.WriteString(" " + d.Lua + "\n")
	}
	for _, c := range d.Block {
		b.WriteByte(' ')
		b.WriteString(c.String())
	}
	b.WriteString(" }")
	return b.String()
}

func quoteIfNeeded(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n;{}\"'#\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Parse parses a config file's text.
func Parse(text string) ([]Directive, error) {
	p := &parser{lex: lexer{src: text, line: 1}}
	ds, err := p.block(false)
	if err != nil {
		return nil, err
	}
	return ds, nil
}

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokWord
	tokSemicolon
	tokOpen
	tokClose
)

type token struct {
	kind tokenKind
	text string
	line int
}

type lexer struct {
	src  string
	pos  int
	line int
}

// next returns the next token. Words may be quoted ("..." or '...', with
// backslash escapes) or bare; a bare word ends at white space, ";", "{",
// "}" or a quote; "#" at the start of a token begins a comment to the end
// of the line.
func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		default:
			return l.token()
		}
	}
	return token{kind: tokEOF, line: l.line}, nil
}

func (l *lexer) token() (token, error) {
	c, line := l.src[l.pos], l.line
	switch c {
	case ';':
		l.pos++
		return token{tokSemicolon, ";", line}, nil
	case '{':
		l.pos++
		return token{tokOpen, "{", line}, nil
	case '}':
		l.pos++
		return token{tokClose, "}", line}, nil
	case '"', '\'':
		var b strings.Builder
		l.pos++
		for {
			if l.pos >= len(l.src) {
				return token{}, fmt.Errorf("line %d: unterminated quoted string", line)
			}
			ch := l.src[l.pos]
			switch {
			case ch == c:
				l.pos++
				return token{tokWord, b.String(), line}, nil
			case ch == '\\' && l.pos+1 < len(l.src):
				next := l.src[l.pos+1]
				switch next {
				case '"', '\'', '\\':
					b.WriteByte(next)
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				default:
					b.WriteByte('\\')
					b.WriteByte(next)
				}
				l.pos += 2
			default:
				if ch == '\n' {
					l.line++
				}
				b.WriteByte(ch)
				l.pos++
			}
		}
	}
	start := l.pos
	for l.pos < len(l.src) {
		ch := l.src[l.pos]
		if ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ';' || ch == '{' || ch == '}' || ch == '"' || ch == '\'' {
			break
		}
		if ch == '\\' && l.pos+1 < len(l.src) {
			l.pos++
		}
		l.pos++
	}
	return token{tokWord, l.src[start:l.pos], line}, nil
}

type parser struct {
	lex lexer
}

// block parses directives until "}" (inner) or the end of the text.
func (p *parser) block(inner bool) ([]Directive, error) {
	ds := []Directive{}
	for {
		t, err := p.lex.next()
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case tokEOF:
			if inner {
				return nil, fmt.Errorf("line %d: unexpected end of file, expecting \"}\"", t.line)
			}
			return ds, nil
		case tokClose:
			if !inner {
				return nil, fmt.Errorf("line %d: unexpected \"}\"", t.line)
			}
			return ds, nil
		case tokSemicolon, tokOpen:
			return nil, fmt.Errorf("line %d: unexpected %q", t.line, t.text)
		}
		d := Directive{Name: t.text, Line: t.line}
		for done := false; !done; {
			t, err := p.lex.next()
			if err != nil {
				return nil, err
			}
			switch t.kind {
			case tokWord:
				d.Args = append(d.Args, t.text)
			case tokSemicolon:
				done = true
			case tokOpen:
				if strings.HasSuffix(d.Name, "_by_lua_block") {
					d.Block = []Directive{}
					if d.Lua, err = p.lex.luaBlock(); err != nil {
						return nil, err
					}
				} else if d.Block, err = p.block(true); err != nil {
					return nil, err
				}
				done = true
			default:
				return nil, fmt.Errorf("line %d: directive %q is not terminated by \";\"", d.Line, d.Name)
			}
		}
		ds = append(ds, d)
	}
}

// luaBlock reads the Lua code of a *_by_lua_block after its "{", up to the
// "}" that closes it, as lua-nginx-module does: braces inside Lua strings
// and comments do not count.
func (l *lexer) luaBlock() (string, error) {
	start, line, depth := l.pos, l.line, 0
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == '{':
			depth++
			l.pos++
		case c == '}':
			if depth == 0 {
				code := strings.TrimSpace(l.src[start:l.pos])
				l.pos++
				return code, nil
			}
			depth--
			l.pos++
		case c == '"' || c == '\'':
			l.pos++
			for l.pos < len(l.src) && l.src[l.pos] != c && l.src[l.pos] != '\n' {
				if l.src[l.pos] == '\\' {
					l.pos++
				}
				l.pos++
			}
			if l.pos >= len(l.src) || l.src[l.pos] != c {
				return "", fmt.Errorf("line %d: unterminated Lua string", l.line)
			}
			l.pos++
		case strings.HasPrefix(l.src[l.pos:], "--"):
			l.pos += 2
			if level, ok := longBracket(l.src[l.pos:]); ok {
				if err := l.skipLong(level); err != nil {
					return "", err
				}
				continue
			}
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case c == '[':
			if level, ok := longBracket(l.src[l.pos:]); ok {
				if err := l.skipLong(level); err != nil {
					return "", err
				}
				continue
			}
			l.pos++
		default:
			l.pos++
		}
	}
	return "", fmt.Errorf("line %d: unterminated Lua block", line)
}

// longBracket reports whether s starts with a Lua long bracket "[[" or
// "[==[", and its level (the number of "=").
func longBracket(s string) (level int, ok bool) {
	if !strings.HasPrefix(s, "[") {
		return 0, false
	}
	i := 1
	for i < len(s) && s[i] == '=' {
		i++
	}
	if i < len(s) && s[i] == '[' {
		return i - 1, true
	}
	return 0, false
}

// skipLong skips a long string or comment that starts at l.pos with a
// long bracket of level.
func (l *lexer) skipLong(level int) error {
	line := l.line
	l.pos += level + 2
	end := "]" + strings.Repeat("=", level) + "]"
	i := strings.Index(l.src[l.pos:], end)
	if i < 0 {
		return fmt.Errorf("line %d: unterminated Lua long string or comment", line)
	}
	l.line += strings.Count(l.src[l.pos:l.pos+i], "\n")
	l.pos += i + len(end)
	return nil
}
