/*
 * rules.c - rule packs: a readable text format a compliance reviewer can
 * extend, and a word-level matcher that tolerates recogniser slips.
 *
 * The format is documented in models/rules/README.md.  A pattern compiles
 * to a small tree (words, prefixes, groups of alternatives, bounded gaps,
 * optional items) matched by backtracking over the recognised words:
 * patterns are short and utterances hold at most a few hundred words, so
 * the simple matcher is also the fast one.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RULES_MAX_TOKENS 256
#define RULES_MAX_DEPTH 8
#define RULES_MAX_GAP 9
#define RULES_FILE_MAX (1024 * 1024)
/* The backtracking matcher tries every way a pattern can be placed: "~9 ~9
 * ~9 ~9 ~9 ~9 ~9 ~9 z" took 52 CPU seconds on 48 words, a stuck worker on a
 * long call.  Patterns with more ways than this (the packs' largest has 800)
 * are refused at load (tests/fuzz/regressions/rules/gaps-exponential.rules). */
#define RULES_MAX_WAYS 10000UL

typedef enum { NODE_WORD, NODE_PREFIX, NODE_GROUP, NODE_GAP } rules_node_kind;

typedef struct rules_seq rules_seq;
typedef struct rules_node {
	rules_node_kind kind;
	int optional;
	char *word;           /* NODE_WORD / NODE_PREFIX */
	const char **aliases; /* NODE_WORD: other spellings, NULL-terminated */
	int gap;              /* NODE_GAP: 0..gap words */
	rules_seq *alts;      /* NODE_GROUP: alternatives */
	size_t n_alts;
} rules_node;

struct rules_seq {
	rules_node *nodes;
	size_t n;
};

typedef struct rules_rule {
	char *category;
	char *id; /* CATEGORY.ID */
	char *strength;
	char *note;
	vms_severity severity;
	rules_seq pattern;
	rules_seq *before; /* unless-before guards */
	size_t n_before;
	rules_seq *after; /* unless-after guards */
	size_t n_after;
} rules_rule;

typedef struct rules_alias {
	char *word;
	char **variants; /* NULL-terminated */
} rules_alias;

struct vms_rules {
	rules_rule *rules;
	size_t n, cap;
	rules_alias *aliases;
	size_t n_aliases, cap_aliases;
};

/* A continuation: the rest of a sequence to match, then what follows it. */
typedef struct rules_cont {
	const rules_seq *seq;
	size_t i;
	const struct rules_cont *next;
} rules_cont;

typedef struct rules_parser {
	char *toks[RULES_MAX_TOKENS];
	size_t n, pos;
	char *err;
	size_t errlen;
	const char *where;
} rules_parser;

static int rules_tokenize(rules_parser *p, const char *text);
static int rules_parse_seq(rules_parser *p, rules_seq *out, int depth, int in_group);
static int rules_compile(const char *text, rules_seq *out, char *err, size_t errlen,
                         const char *where);
static void rules_seq_free(rules_seq *s);
static void rules_rule_free(rules_rule *r);
typedef struct rules_text {
	const char *const *w;
	const char *const *alts; /* may be NULL */
	size_t n;
	int budget;  /* alternatives a match may still use */
	int initial; /* the budget it started with */
	int used;    /* alternatives the successful match used */
} rules_text;

#define RULES_ALT_BUDGET 1    /* one garbled word per phrase, not more */
#define RULES_ALT_MIN_WORDS 4 /* ... in a phrase of four words or more */
static long rules_match_at(const rules_cont *k, rules_text *t, size_t pos, long target);
static int rules_slot_eq(const rules_node *node, const rules_text *t, size_t pos);
static int rules_word_eq(const rules_node *node, const char *word);
static int rules_guarded(const rules_rule *r, rules_text *t, size_t s, size_t e);
static int rules_parse_text(vms_rules *r, const char *text, const char *name, int signoffs,
                            char *err, size_t errlen);
static void rules_link_aliases(vms_rules *r);
static void rules_link_seq(vms_rules *r, rules_seq *s);
static char *rules_trim(char *s);
static int rules_valid_id(const char *s);
static void rules_seq_words(const rules_seq *s, void (*cb)(const char *, int, void *), void *arg);

/* Strip leading and trailing white space in place. */
static char *rules_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Rule ids: letters, digits, '_', '-', '.'. */
static int rules_valid_id(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return 0;
	return 1;
}

/* Split a pattern into tokens: words, ( ) | ? and ~N. */
static int rules_tokenize(rules_parser *p, const char *text)
{
	const char *c = text;
	p->n = p->pos = 0;
	while (*c) {
		if (isspace((unsigned char)*c)) {
			c++;
			continue;
		}
		size_t len = 1;
		if (!strchr("()|?", *c)) {
			if (*c == '~')
				len = 1 + strspn(c + 1, "0123456789");
			else
				len = strcspn(c, "()|? \t\r\n~");
		}
		if (p->n == RULES_MAX_TOKENS) {
			vms_errf(p->err, p->errlen, "%s: pattern too long", p->where);
			return -1;
		}
		p->toks[p->n] = strndup(c, len);
		if (p->toks[p->n] == NULL)
			return -1;
		for (char *t = p->toks[p->n]; *t; t++)
			*t = (char)tolower((unsigned char)*t);
		p->n++;
		c += len;
	}
	return 0;
}

/* seq := item*, item := (WORD | '(' seq ('|' seq)* ')' | ~N) '?'? */
static int rules_parse_seq(rules_parser *p, rules_seq *out, int depth, int in_group)
{
	size_t cap = 0;
	memset(out, 0, sizeof *out);
	if (depth > RULES_MAX_DEPTH) {
		vms_errf(p->err, p->errlen, "%s: groups nested too deep", p->where);
		return -1;
	}
	while (p->pos < p->n) {
		char *t = p->toks[p->pos];
		if (strcmp(t, "|") == 0 || strcmp(t, ")") == 0) {
			if (!in_group) {
				vms_errf(p->err, p->errlen, "%s: unexpected '%s'", p->where, t);
				return -1;
			}
			break;
		}
		if (strcmp(t, "?") == 0) {
			vms_errf(p->err, p->errlen, "%s: '?' must follow a word or a group",
			         p->where);
			return -1;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 8;
			rules_node *nn = realloc(out->nodes, cap * sizeof *nn);
			if (nn == NULL)
				return -1;
			out->nodes = nn;
		}
		rules_node *node = &out->nodes[out->n];
		memset(node, 0, sizeof *node);
		p->pos++;
		if (strcmp(t, "(") == 0) {
			node->kind = NODE_GROUP;
			out->n++;
			size_t acap = 0;
			for (;;) {
				if (node->n_alts == acap) {
					acap = acap ? acap * 2 : 4;
					rules_seq *na = realloc(node->alts, acap * sizeof *na);
					if (na == NULL)
						return -1;
					node->alts = na;
				}
				if (rules_parse_seq(p, &node->alts[node->n_alts++], depth + 1, 1) <
				    0)
					return -1;
				if (node->alts[node->n_alts - 1].n == 0) {
					vms_errf(p->err, p->errlen, "%s: empty alternative",
					         p->where);
					return -1;
				}
				if (p->pos >= p->n) {
					vms_errf(p->err, p->errlen, "%s: missing ')'", p->where);
					return -1;
				}
				if (strcmp(p->toks[p->pos++], ")") == 0)
					break;
			}
		} else if (t[0] == '~') {
			node->kind = NODE_GAP;
			node->gap = atoi(t + 1);
			out->n++;
			if (t[1] == '\0' || node->gap < 1 || node->gap > RULES_MAX_GAP) {
				vms_errf(p->err, p->errlen, "%s: gap '%s' must be ~1 to ~%d",
				         p->where, t, RULES_MAX_GAP);
				return -1;
			}
		} else {
			size_t len = strlen(t);
			node->kind = t[len - 1] == '*' ? NODE_PREFIX : NODE_WORD;
			node->word = strndup(t, node->kind == NODE_PREFIX ? len - 1 : len);
			out->n++;
			if (node->word == NULL)
				return -1;
			if (node->word[0] == '\0' || strchr(node->word, '*')) {
				vms_errf(p->err, p->errlen, "%s: bad word '%s'", p->where, t);
				return -1;
			}
		}
		if (p->pos < p->n && strcmp(p->toks[p->pos], "?") == 0) {
			if (node->kind == NODE_GAP) {
				vms_errf(p->err, p->errlen, "%s: a gap is already optional",
				         p->where);
				return -1;
			}
			node->optional = 1;
			p->pos++;
		}
	}
	return 0;
}

/*
 * Worst-case ways the matcher may try a sequence from one word: gaps and
 * optional items multiply, alternatives that can begin on the same word
 * add up (those that begin with anything but a plain word always count).
 * Saturates just above RULES_MAX_WAYS.
 */
static unsigned long rules_ways(const rules_seq *s)
{
	unsigned long ways = 1;
	for (size_t i = 0; i < s->n; i++) {
		const rules_node *node = &s->nodes[i];
		unsigned long k = 1;
		if (node->kind == NODE_GAP) {
			k = (unsigned long)node->gap + 1;
		} else if (node->kind == NODE_GROUP) {
			unsigned long wild = 0, most = 0;
			for (size_t a = 0; a < node->n_alts; a++) {
				const rules_node *f = &node->alts[a].nodes[0];
				unsigned long same = 0;
				if (f->kind != NODE_WORD || f->optional) {
					wild += rules_ways(&node->alts[a]);
					continue;
				}
				for (size_t b = 0; b < node->n_alts; b++) {
					const rules_node *g = &node->alts[b].nodes[0];
					if (g->kind == NODE_WORD && !g->optional &&
					    strcmp(g->word, f->word) == 0)
						same += rules_ways(&node->alts[b]);
					if (same > RULES_MAX_WAYS)
						break;
				}
				most = same > most ? same : most;
				if (wild + most > RULES_MAX_WAYS)
					break;
			}
			k = wild + most;
		}
		if (node->optional)
			k++;
		ways *= k;
		if (ways > RULES_MAX_WAYS)
			return RULES_MAX_WAYS + 1;
	}
	return ways;
}

/* Compile pattern text; where names file:line for errors. */
static int rules_compile(const char *text, rules_seq *out, char *err, size_t errlen,
                         const char *where)
{
	rules_parser p = {.err = err, .errlen = errlen, .where = where};
	/* out is freed on every failure, also when tokenizing fails before the
	 * parser sets it: a caller's stale `g` (a guard already pushed) was
	 * freed twice.  Found by tests/fuzz/fuzz_rules
	 * (tests/fuzz/regressions/rules/guard-too-long-double-free.rules). */
	memset(out, 0, sizeof *out);
	int rc = rules_tokenize(&p, text);
	if (rc == 0)
		rc = rules_parse_seq(&p, out, 0, 0);
	if (rc == 0 && out->n == 0) {
		vms_errf(err, errlen, "%s: empty pattern", where);
		rc = -1;
	}
	if (rc == 0) {
		int solid = 0;
		for (size_t i = 0; i < out->n; i++)
			solid |= !out->nodes[i].optional && out->nodes[i].kind != NODE_GAP;
		if (!solid) {
			vms_errf(err, errlen, "%s: pattern can match nothing at all", where);
			rc = -1;
		}
	}
	if (rc == 0 && rules_ways(out) > RULES_MAX_WAYS) {
		vms_errf(err, errlen,
		         "%s: pattern too ambiguous: over %lu ways to place its gaps, optional "
		         "words and alternatives (use fewer or shorter gaps)",
		         where, RULES_MAX_WAYS);
		rc = -1;
	}
	for (size_t i = 0; i < p.n; i++)
		free(p.toks[i]);
	if (rc < 0)
		rules_seq_free(out);
	return rc;
}

/* Free a compiled sequence. */
static void rules_seq_free(rules_seq *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->nodes[i].word);
		for (size_t a = 0; a < s->nodes[i].n_alts; a++)
			rules_seq_free(&s->nodes[i].alts[a]);
		free(s->nodes[i].alts);
	}
	free(s->nodes);
	memset(s, 0, sizeof *s);
}

/* Free one rule. */
static void rules_rule_free(rules_rule *r)
{
	free(r->category);
	free(r->id);
	free(r->strength);
	free(r->note);
	rules_seq_free(&r->pattern);
	for (size_t i = 0; i < r->n_before; i++)
		rules_seq_free(&r->before[i]);
	for (size_t i = 0; i < r->n_after; i++)
		rules_seq_free(&r->after[i]);
	free(r->before);
	free(r->after);
}

/* Free a rule set. */
void vms_rules_free(vms_rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		rules_rule_free(&r->rules[i]);
	for (size_t i = 0; i < r->n_aliases; i++) {
		free(r->aliases[i].word);
		for (char **v = r->aliases[i].variants; v && *v; v++)
			free(*v);
		free(r->aliases[i].variants);
	}
	free(r->aliases);
	free(r->rules);
	free(r);
}

size_t vms_rules_count(const vms_rules *r)
{
	return r ? r->n : 0;
}

/* Attach alias lists to every literal word in a sequence. */
static void rules_link_seq(vms_rules *r, rules_seq *s)
{
	for (size_t i = 0; i < s->n; i++) {
		rules_node *node = &s->nodes[i];
		if (node->kind == NODE_WORD) {
			node->aliases = NULL;
			for (size_t a = 0; a < r->n_aliases; a++)
				if (strcmp(r->aliases[a].word, node->word) == 0)
					node->aliases = (const char **)r->aliases[a].variants;
		}
		for (size_t a = 0; a < node->n_alts; a++)
			rules_link_seq(r, &node->alts[a]);
	}
}

/* Aliases apply across packs, so link once everything is loaded. */
static void rules_link_aliases(vms_rules *r)
{
	for (size_t i = 0; i < r->n; i++) {
		rules_link_seq(r, &r->rules[i].pattern);
		for (size_t g = 0; g < r->rules[i].n_before; g++)
			rules_link_seq(r, &r->rules[i].before[g]);
		for (size_t g = 0; g < r->rules[i].n_after; g++)
			rules_link_seq(r, &r->rules[i].after[g]);
	}
}

/* Append a guard sequence to a list. */
static int rules_push_guard(rules_seq **list, size_t *n, rules_seq *g)
{
	rules_seq *nl = realloc(*list, (*n + 1) * sizeof *nl);
	if (nl == NULL)
		return -1;
	nl[(*n)++] = *g;
	*list = nl;
	return 0;
}

/*
 * Parse one pack's text into r.  signoffs selects the sign-off list format
 * (`strong|weak PATTERN`) instead of the rule-pack one.
 */
static int rules_parse_text(vms_rules *r, const char *text, const char *name, int signoffs,
                            char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL, where[512];
	char category[64] = "", *line;
	vms_severity sev = VMS_SEV_MEDIUM;
	rules_rule *cur = NULL;
	int lineno = 0, rc = -1;
	if (copy == NULL)
		return -1;
	/* strtok_r would skip empty lines and break line numbers: walk by hand */
	for (line = copy; line; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = '\0';
		lineno++;
		snprintf(where, sizeof where, "%s:%d", name, lineno);
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		int cont = isspace((unsigned char)line[0]);
		char *l = rules_trim(line);
		if (*l == '\0')
			continue;
		if (signoffs && !cont) {
			char *sp = strpbrk(l, " \t");
			if (sp == NULL) {
				vms_errf(err, errlen,
				         "%s: expected 'strong|weak|postscript PATTERN'", where);
				goto out;
			}
			*sp = '\0';
			if (strcmp(l, "strong") != 0 && strcmp(l, "weak") != 0 &&
			    strcmp(l, "postscript") != 0) {
				vms_errf(err, errlen, "%s: '%s' is not strong, weak or postscript",
				         where, l);
				goto out;
			}
			snprintf(category, sizeof category, "signoff");
		}
		if (cont) { /* a rule's (or sign-off's) settings: guards, notes */
			char *colon = strchr(l, ':');
			if (cur == NULL || colon == NULL) {
				vms_errf(err, errlen, "%s: indented line outside a rule", where);
				goto out;
			}
			*colon = '\0';
			char *key = rules_trim(l), *val = rules_trim(colon + 1);
			if (strcmp(key, "severity") == 0) {
				if (vms_severity_parse(val, &cur->severity) < 0) {
					vms_errf(err, errlen, "%s: unknown severity '%s'", where,
					         val);
					goto out;
				}
			} else if (strcmp(key, "unless-before") == 0 ||
			           strcmp(key, "unless-after") == 0) {
				rules_seq g;
				if (rules_compile(val, &g, err, errlen, where) < 0)
					goto out;
				int b = key[7] == 'b';
				if (rules_push_guard(b ? &cur->before : &cur->after,
				                     b ? &cur->n_before : &cur->n_after, &g) < 0) {
					rules_seq_free(&g);
					goto out;
				}
			} else if (strcmp(key, "note") == 0) {
				free(cur->note);
				cur->note = strdup(val);
			} else {
				vms_errf(err, errlen, "%s: unknown rule setting '%s'", where, key);
				goto out;
			}
			continue;
		}
		char *pattern = NULL, id[128];
		if (signoffs) {
			pattern = l + strlen(l) + 1;
			snprintf(id, sizeof id, "%d", lineno);
		} else if (strncmp(l, "category ", 9) == 0) {
			snprintf(category, sizeof category, "%s", rules_trim(l + 9));
			if (!rules_valid_id(category)) {
				vms_errf(err, errlen, "%s: bad category name", where);
				goto out;
			}
			continue;
		} else if (strncmp(l, "severity ", 9) == 0) {
			if (vms_severity_parse(rules_trim(l + 9), &sev) < 0) {
				vms_errf(err, errlen, "%s: unknown severity '%s'", where,
				         rules_trim(l + 9));
				goto out;
			}
			continue;
		} else if (strncmp(l, "alias ", 6) == 0) {
			char *eq = strchr(l, '=');
			if (eq == NULL) {
				vms_errf(err, errlen, "%s: expected 'alias WORD = VARIANT...'",
				         where);
				goto out;
			}
			*eq = '\0';
			char *word = rules_trim(l + 6), *vs = eq + 1, *s2 = NULL;
			if (*word == '\0' || strpbrk(word, " \t")) {
				vms_errf(err, errlen, "%s: alias needs one word before '='", where);
				goto out;
			}
			if (r->n_aliases == r->cap_aliases) {
				r->cap_aliases = r->cap_aliases ? r->cap_aliases * 2 : 16;
				rules_alias *na = realloc(r->aliases, r->cap_aliases * sizeof *na);
				if (na == NULL)
					goto out;
				r->aliases = na;
			}
			rules_alias *al = &r->aliases[r->n_aliases++];
			al->word = strdup(word);
			al->variants = calloc(strlen(vs) / 2 + 2, sizeof *al->variants);
			if (al->word == NULL || al->variants == NULL)
				goto out;
			size_t k = 0;
			for (char *v = strtok_r(vs, " \t", &s2); v; v = strtok_r(NULL, " \t", &s2))
				al->variants[k++] = strdup(v);
			for (char *w = al->word; *w; w++)
				*w = (char)tolower((unsigned char)*w);
			continue;
		} else if (strncmp(l, "rule ", 5) == 0) {
			char *colon = strchr(l, ':');
			if (colon == NULL) {
				vms_errf(err, errlen, "%s: expected 'rule ID: PATTERN'", where);
				goto out;
			}
			*colon = '\0';
			snprintf(id, sizeof id, "%s", rules_trim(l + 5));
			pattern = colon + 1;
			if (!rules_valid_id(id)) {
				vms_errf(err, errlen, "%s: bad rule id '%s'", where, id);
				goto out;
			}
			if (category[0] == '\0') {
				vms_errf(err, errlen, "%s: rule before any 'category' line", where);
				goto out;
			}
		} else {
			vms_errf(err, errlen, "%s: unknown directive '%.40s'", where, l);
			goto out;
		}
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			rules_rule *nr = realloc(r->rules, r->cap * sizeof *nr);
			if (nr == NULL)
				goto out;
			r->rules = nr;
		}
		cur = &r->rules[r->n];
		memset(cur, 0, sizeof *cur);
		cur->severity = sev;
		if (rules_compile(pattern, &cur->pattern, err, errlen, where) < 0) {
			cur = NULL;
			goto out;
		}
		r->n++;
		cur->category = strdup(category);
		cur->id = vms_strdupf("%s.%s", category, id);
		cur->strength = signoffs ? strdup(l) : NULL;
		if (cur->category == NULL || cur->id == NULL)
			goto out;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

/* Parse rule-pack text (tests, linter). */
vms_rules *vms_rules_parse(const char *text, const char *name, char *err, size_t errlen)
{
	vms_rules *r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	if (rules_parse_text(r, text, name, 0, err, errlen) < 0) {
		vms_rules_free(r);
		return NULL;
	}
	rules_link_aliases(r);
	return r;
}

/* qsort by name, so packs load in a stable order. */
static int rules_cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load every *.rules file in dir. */
vms_rules *vms_rules_load_dir(const char *dir, char *err, size_t errlen)
{
	char why[256], path[VMS_PATH_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0;
	vms_rules *r = calloc(1, sizeof *r);
	DIR *d = opendir(dir);
	if (r == NULL)
		goto fail;
	if (d == NULL) {
		vms_errf(err, errlen, "%s: cannot open rule pack folder: %s", dir, strerror(errno));
		goto fail;
	}
	for (struct dirent *de; (de = readdir(d));) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 7 || strcmp(de->d_name + len - 6, ".rules"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof *nn);
			if (nn == NULL)
				goto fail;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto fail;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof *names, rules_cmp_name);
	for (size_t i = 0; i < n; i++) {
		if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
			vms_errf(err, errlen, "%s/%s: path too long", dir, names[i]);
			goto fail;
		}
		char *text = vms_read_text(path, RULES_FILE_MAX, why, sizeof why);
		if (text == NULL) {
			vms_errf(err, errlen, "%s: %s", path, why);
			goto fail;
		}
		int rc = rules_parse_text(r, text, path, 0, err, errlen);
		free(text);
		if (rc < 0)
			goto fail;
	}
	if (r->n == 0) {
		vms_errf(err, errlen, "%s: no rules found (expected *.rules files)", dir);
		goto fail;
	}
	rules_link_aliases(r);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
fail:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	vms_rules_free(r);
	return NULL;
}

/* Load a sign-off list. */
vms_rules *vms_rules_load_signoffs(const char *path, char *err, size_t errlen)
{
	char why[256];
	vms_rules *r = calloc(1, sizeof *r);
	char *text = vms_read_text(path, RULES_FILE_MAX, why, sizeof why);
	if (r == NULL || text == NULL) {
		if (text == NULL)
			vms_errf(err, errlen, "%s: %s", path, why);
		free(text);
		vms_rules_free(r);
		return NULL;
	}
	int rc = rules_parse_text(r, text, path, 1, err, errlen);
	free(text);
	if (rc < 0 || r->n == 0) {
		if (rc == 0)
			vms_errf(err, errlen, "%s: no sign-off phrases", path);
		vms_rules_free(r);
		return NULL;
	}
	return r;
}

/* Does a transcript word satisfy a word or prefix node? */
static int rules_word_eq(const rules_node *node, const char *word)
{
	if (node->kind == NODE_PREFIX)
		return strncmp(word, node->word, strlen(node->word)) == 0;
	if (strcmp(word, node->word) == 0)
		return 1;
	for (const char **a = node->aliases; a && *a; a++)
		if (strcmp(word, *a) == 0)
			return 1;
	return 0;
}

/*
 * Backtracking match: the rest of k's sequence, then k->next, from word
 * pos.  Returns the end position (exclusive) of the first way to match,
 * or -1.  With target >= 0 only a match ending exactly there counts (for
 * unless-before guards).
 */
static long rules_match_at(const rules_cont *k, rules_text *t, size_t pos, long target)
{
	if (k == NULL) {
		if (target >= 0 && (long)pos != target)
			return -1;
		t->used = t->initial - t->budget;
		return (long)pos;
	}
	if (k->i == k->seq->n)
		return rules_match_at(k->next, t, pos, target);
	const rules_node *node = &k->seq->nodes[k->i];
	rules_cont rest = {k->seq, k->i + 1, k->next};
	long r = -1;
	switch (node->kind) {
	case NODE_WORD:
	case NODE_PREFIX:
		if (pos >= t->n)
			break;
		if (rules_word_eq(node, t->w[pos])) {
			r = rules_match_at(&rest, t, pos + 1, target);
		}
		if (r < 0 && t->budget > 0 && rules_slot_eq(node, t, pos)) {
			t->budget--;
			r = rules_match_at(&rest, t, pos + 1, target);
			t->budget++;
		}
		break;
	case NODE_GROUP:
		for (size_t a = 0; a < node->n_alts && r < 0; a++) {
			rules_cont sub = {&node->alts[a], 0, &rest};
			r = rules_match_at(&sub, t, pos, target);
		}
		break;
	case NODE_GAP:
		for (int g = 0; g <= node->gap && r < 0 && pos + (size_t)g <= t->n; g++)
			r = rules_match_at(&rest, t, pos + (size_t)g, target);
		return r;
	}
	if (r < 0 && node->optional)
		r = rules_match_at(&rest, t, pos, target);
	return r;
}

/* One of the recogniser's alternatives at pos. */
static int rules_slot_eq(const rules_node *node, const rules_text *t, size_t pos)
{
	if (t->alts == NULL || t->alts[pos] == NULL)
		return 0;
	for (const char *a = t->alts[pos]; *a; a += strlen(a) + 1)
		if (rules_word_eq(node, a))
			return 1;
	return 0;
}

/* Do the rule's guards veto a hit on words [s, e)?  Guards look at the
 * best guess only: an alternative must not excuse what was said. */
static int rules_guarded(const rules_rule *r, rules_text *t, size_t s, size_t e)
{
	rules_text best = {t->w, NULL, t->n, 0, 0, 0};
	for (size_t g = 0; g < r->n_before; g++) {
		size_t lo = s > 12 ? s - 12 : 0; /* guards are short phrases */
		for (size_t from = lo; from < s; from++) {
			rules_cont k = {&r->before[g], 0, NULL};
			if (rules_match_at(&k, &best, from, (long)s) >= 0)
				return 1;
		}
	}
	for (size_t g = 0; g < r->n_after; g++) {
		rules_cont k = {&r->after[g], 0, NULL};
		if (rules_match_at(&k, &best, e, -1) >= 0)
			return 1;
	}
	return 0;
}

/*
 * Every hit of every rule in a word sequence, leftmost first per rule; a
 * rule's hits do not overlap each other.
 */
size_t vms_rules_match(const vms_rules *r, const char *const *words, size_t n, vms_hit_cb cb,
                       void *arg)
{
	return vms_rules_match_alts(r, words, NULL, n, cb, arg);
}

/* See internal.h. */
size_t vms_rules_match_alts(const vms_rules *r, const char *const *words, const char *const *alts,
                            size_t n, vms_hit_cb cb, void *arg)
{
	int budget = alts ? RULES_ALT_BUDGET : 0;
	rules_text t = {words, alts, n, budget, budget, 0};
	size_t hits = 0;
	for (size_t i = 0; r && i < r->n; i++) {
		const rules_rule *rule = &r->rules[i];
		for (size_t s = 0; s < n;) {
			rules_cont k = {&rule->pattern, 0, NULL};
			long e = rules_match_at(&k, &t, s, -1);
			/* a phrase completed by an alternative needs enough words
			 * the recogniser was sure of around it */
			if (e > (long)s && t.used > 0 && (size_t)e - s < RULES_ALT_MIN_WORDS)
				e = -1;
			if (e <= (long)s || rules_guarded(rule, &t, s, (size_t)e)) {
				s++;
				continue;
			}
			vms_hit h = {.category = rule->category,
			             .rule_id = rule->id,
			             .strength = rule->strength,
			             .severity = rule->severity,
			             .first = s,
			             .last = (size_t)e - 1};
			if (cb)
				cb(&h, arg);
			hits++;
			s = (size_t)e;
		}
	}
	return hits;
}

/* See internal.h. */
int vms_rules_input_push(vms_rules_input *in, const vms_word *w)
{
	if (in->n == in->cap) {
		size_t nc = in->cap * 2 + 8;
		const vms_word **nw = realloc(in->words, (nc + 1) * sizeof *nw);
		if (nw == NULL)
			return -1;
		in->words = nw;
		const char **nt = realloc(in->text, (nc + 1) * sizeof *nt);
		if (nt == NULL)
			return -1;
		in->text = nt;
		const char **na = realloc(in->alts, (nc + 1) * sizeof *na);
		if (na == NULL)
			return -1;
		in->alts = na;
		in->cap = nc;
	}
	in->words[in->n] = w;
	in->text[in->n] = w->w;
	in->alts[in->n++] = w->alts;
	return 0;
}

/* See internal.h. */
int vms_rules_input_init(vms_rules_input *in, size_t n_words, const vms_wordseqs *seqs)
{
	size_t most = n_words;
	for (size_t k = 0; seqs && k < seqs->n_seqs; k++)
		if (vms_wordseqs_len(seqs, k) > most)
			most = vms_wordseqs_len(seqs, k);
	memset(in, 0, sizeof *in);
	in->words = malloc((most + 1) * sizeof *in->words);
	in->text = malloc((most + 1) * sizeof *in->text);
	in->alts = malloc((most + 1) * sizeof *in->alts);
	if (in->words == NULL || in->text == NULL || in->alts == NULL) {
		vms_rules_input_free(in);
		return -1;
	}
	in->cap = most;
	return 0;
}

/* See internal.h. */
void vms_rules_input_channel(vms_rules_input *in, const vms_word *words, size_t n, int channel)
{
	in->n = 0;
	for (size_t i = 0; i < n && in->n < in->cap; i++) {
		if (words[i].channel != channel)
			continue;
		in->words[in->n] = &words[i];
		in->text[in->n] = words[i].w;
		in->alts[in->n++] = words[i].alts;
	}
}

/* See internal.h. */
int vms_rules_input_seq(vms_rules_input *in, const vms_wordseqs *seqs, size_t k)
{
	size_t n = vms_wordseqs_len(seqs, k), base = seqs->start[k];
	in->n = 0;
	for (size_t i = 0; i < n && in->n < in->cap; i++) {
		const vms_word *w = &seqs->words[base + i];
		in->words[in->n] = w;
		in->text[in->n] = w->w;
		in->alts[in->n++] = w->alts;
	}
	return in->n ? in->words[0]->channel : -1;
}

/* See internal.h. */
void vms_rules_input_free(vms_rules_input *in)
{
	free(in->words);
	free(in->text);
	free(in->alts);
	memset(in, 0, sizeof *in);
}

/* Every literal and prefix in a sequence, recursively. */
static void rules_seq_words(const rules_seq *s, void (*cb)(const char *, int, void *), void *arg)
{
	for (size_t i = 0; i < s->n; i++) {
		const rules_node *node = &s->nodes[i];
		if (node->kind == NODE_WORD || node->kind == NODE_PREFIX)
			cb(node->word, node->kind == NODE_PREFIX, arg);
		for (size_t a = 0; a < node->n_alts; a++)
			rules_seq_words(&node->alts[a], cb, arg);
	}
}

/* See internal.h: what the vocabulary must contain for the rules to fire. */
void vms_rules_words(const vms_rules *r, void (*cb)(const char *w, int prefix, void *arg),
                     void *arg)
{
	for (size_t i = 0; r && i < r->n; i++) {
		rules_seq_words(&r->rules[i].pattern, cb, arg);
		for (size_t g = 0; g < r->rules[i].n_before; g++)
			rules_seq_words(&r->rules[i].before[g], cb, arg);
		for (size_t g = 0; g < r->rules[i].n_after; g++)
			rules_seq_words(&r->rules[i].after[g], cb, arg);
	}
	for (size_t a = 0; r && a < r->n_aliases; a++)
		for (char **v = r->aliases[a].variants; v && *v; v++)
			cb(*v, 0, arg);
}
