/*  broker/filter.c - tag and SQL92 filter expressions: a hand-written
    lexer and recursive-descent parser build a tree once; evaluation walks
    it with three-valued logic (see filter.h and docs/protocol.md
    section 14).

    Grammar (keywords are case-insensitive, property names are not):

        or      := and { OR and }
        and     := not { AND not }
        not     := NOT not | pred
        pred    := '(' or ')'
                 | TRUE | FALSE
                 | value cmp value
                 | value [NOT] IN '(' literal { ',' literal } ')'
                 | value [NOT] BETWEEN value AND value
                 | value IS [NOT] NULL
        value   := property | 'string' | number | TRUE | FALSE
        cmp     := = | <> | != | < | <= | > | >=

    AND and OR nodes hold all their operands in one array, so a long
    chain of ORs does not make a deep tree; nesting (parentheses and
    NOT) is bounded by ZR_FILTER_DEPTH_MAX.
*/
#include <czmq.h>
#include <errno.h>
#include "transport/codec.h"
#include "broker/filter.h"

#define U ZR_FILTER_UNKNOWN
#define T ZR_FILTER_TRUE
#define F ZR_FILTER_FALSE

typedef struct {
    bool is_int;
    int64_t i;
    double d;
} num_t;

typedef enum { V_PROP, V_TAGS, V_STR, V_NUM, V_BOOL } vtype_t;

typedef struct {
    vtype_t type;
    char *s;                //  property name (NUL-terminated) or string
    size_t len;
    num_t num;
    bool b;
} val_t;

typedef enum { N_CONST, N_AND, N_OR, N_NOT, N_CMP, N_IN, N_BETWEEN,
               N_ISNULL } ntype_t;

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } op_t;

typedef struct _node_t node_t;
struct _node_t {
    ntype_t type;
    int truth;              //  N_CONST
    op_t op;                //  N_CMP
    bool negate;            //  NOT IN, NOT BETWEEN, IS NOT NULL
    val_t *vals;            //  CMP 2, IN 1+n, BETWEEN 3, ISNULL 1
    size_t nvals;
    node_t **kids;          //  AND, OR (n), NOT (1)
    size_t nkids;
};

struct _zr_filter_t {
    bool sql;
    bool all;               //  tag `*`
    char **tags;            //  tag alternatives
    size_t *tag_lens;
    size_t ntags;
    node_t *root;           //  sql
};

//  --------------------------------------------------------------------
//  Numbers: [+-] digits [. digits] [e [+-] digits], at least one digit
//  before the exponent. Used for literals and property values alike.

static bool
s_parse_num (const char *s, size_t len, num_t *out)
{
    char buf [64];
    if (len == 0 || len >= sizeof buf)
        return false;
    size_t i = 0, digits = 0;
    bool is_int = true;
    if (s [i] == '+' || s [i] == '-')
        i++;
    while (i < len && isdigit ((unsigned char) s [i])) {
        i++;
        digits++;
    }
    if (i < len && s [i] == '.') {
        is_int = false;
        i++;
        while (i < len && isdigit ((unsigned char) s [i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < len && (s [i] == 'e' || s [i] == 'E')) {
        is_int = false;
        i++;
        if (i < len && (s [i] == '+' || s [i] == '-'))
            i++;
        size_t exp = 0;
        while (i < len && isdigit ((unsigned char) s [i])) {
            i++;
            exp++;
        }
        if (exp == 0)
            return false;
    }
    if (i != len)
        return false;
    memcpy (buf, s, len);
    buf [len] = 0;
    out->is_int = false;
    if (is_int) {
        errno = 0;
        long long v = strtoll (buf, NULL, 10);
        if (errno == 0) {
            out->is_int = true;
            out->i = (int64_t) v;
        }
    }
    out->d = strtod (buf, NULL);
    return true;
}

static int
s_num_cmp (const num_t *a, const num_t *b)
{
    if (a->is_int && b->is_int)
        return (a->i > b->i) - (a->i < b->i);
    double x = a->is_int ? (double) a->i : a->d;
    double y = b->is_int ? (double) b->i : b->d;
    return (x > y) - (x < y);
}

//  --------------------------------------------------------------------
//  Tree

static void
s_node_free (node_t **self_p)
{
    node_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nvals; i++)
        free (self->vals [i].s);
    free (self->vals);
    for (size_t i = 0; i < self->nkids; i++)
        s_node_free (&self->kids [i]);
    free (self->kids);
    free (self);
    *self_p = NULL;
}

static node_t *
s_node_new (ntype_t type)
{
    node_t *n = (node_t *) zmalloc (sizeof (node_t));
    assert (n);
    n->type = type;
    return n;
}

static void
s_node_add_kid (node_t *n, node_t *kid)
{
    n->kids = (node_t **) realloc (n->kids, (n->nkids + 1) * sizeof (node_t *));
    assert (n->kids);
    n->kids [n->nkids++] = kid;
}

static void
s_node_add_val (node_t *n, val_t *v)
{
    n->vals = (val_t *) realloc (n->vals, (n->nvals + 1) * sizeof (val_t));
    assert (n->vals);
    n->vals [n->nvals++] = *v;
    v->s = NULL;            //  the node owns the string now
}

//  --------------------------------------------------------------------
//  Lexer

typedef enum {
    K_EOF, K_LPAREN, K_RPAREN, K_COMMA, K_OP, K_IDENT, K_STR, K_NUM,
    K_AND, K_OR, K_NOT, K_IN, K_BETWEEN, K_IS, K_NULL, K_TRUE, K_FALSE,
    K_BAD
} tok_t;

typedef struct {
    const char *s;
    size_t len;
    size_t pos;             //  next byte to lex
    //  current token
    tok_t tok;
    size_t tpos;            //  0-based start
    size_t tlen;
    op_t op;
    num_t num;
    char *text;             //  K_STR unescaped / K_IDENT name (owned)
    size_t text_len;
    //  errors
    char *err;
    size_t err_size;
    bool failed;
    int depth;
} parser_t;

static void
s_fail (parser_t *p, size_t pos0, const char *format, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (!p->err || p->err_size == 0)
        return;
    int n = snprintf (p->err, p->err_size, "position %zu: ", pos0 + 1);
    if (n < 0 || (size_t) n >= p->err_size)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (p->err + n, p->err_size - n, format, args);
    va_end (args);
}

//  "end of expression" or the current token quoted (first 24 bytes).
static const char *
s_tok_desc (parser_t *p, char *buf, size_t size)
{
    if (p->tok == K_EOF)
        return "end of expression";
    size_t n = p->tlen > 24 ? 24 : p->tlen;
    snprintf (buf, size, "'%.*s%s'", (int) n, p->s + p->tpos,
              p->tlen > n ? "..." : "");
    return buf;
}

static bool
s_ident_start (int c)
{
    return isalpha (c) || c == '_' || c == '$';
}

static bool
s_ident_char (int c)
{
    return isalnum (c) || c == '_' || c == '$' || c == '.';
}

static bool
s_word_is (const char *s, size_t len, const char *kw)
{
    return strlen (kw) == len && strncasecmp (s, kw, len) == 0;
}

//  Reads the next token into p (K_BAD after an error).
static void
s_next (parser_t *p)
{
    zstr_free (&p->text);
    p->text_len = 0;
    if (p->failed) {
        p->tok = K_BAD;
        return;
    }
    while (p->pos < p->len && (p->s [p->pos] == ' ' || p->s [p->pos] == '\t'
                               || p->s [p->pos] == '\n'
                               || p->s [p->pos] == '\r'))
        p->pos++;
    p->tpos = p->pos;
    p->tlen = 0;
    if (p->pos >= p->len) {
        p->tok = K_EOF;
        return;
    }
    const char *s = p->s;
    size_t i = p->pos;
    int c = (unsigned char) s [i];
    int c1 = i + 1 < p->len ? (unsigned char) s [i + 1] : 0;
    if (c == '(' || c == ')' || c == ',') {
        p->tok = c == '(' ? K_LPAREN : c == ')' ? K_RPAREN : K_COMMA;
        p->pos++;
    }
    else
    if (c == '=' || c == '<' || c == '>' || (c == '!' && c1 == '=')) {
        p->tok = K_OP;
        size_t n = 1;
        if (c == '=')
            p->op = OP_EQ;
        else
        if (c == '!') {
            p->op = OP_NE;
            n = 2;
        }
        else
        if (c == '<' && c1 == '>') {
            p->op = OP_NE;
            n = 2;
        }
        else
        if (c == '<')
            p->op = c1 == '=' ? (n = 2, OP_LE) : OP_LT;
        else
            p->op = c1 == '=' ? (n = 2, OP_GE) : OP_GT;
        p->pos += n;
    }
    else
    if (c == '\'') {
        char *out = (char *) malloc (p->len - i + 1);
        assert (out);
        size_t n = 0, j = i + 1;
        bool closed = false;
        while (j < p->len) {
            if (s [j] == '\'') {
                if (j + 1 < p->len && s [j + 1] == '\'') {
                    out [n++] = '\'';
                    j += 2;
                    continue;
                }
                closed = true;
                j++;
                break;
            }
            out [n++] = s [j++];
        }
        out [n] = 0;
        if (!closed) {
            free (out);
            s_fail (p, i, "string not closed: expected a \"'\" before the "
                          "end of the expression");
            p->tok = K_BAD;
            return;
        }
        p->tok = K_STR;
        p->text = out;
        p->text_len = n;
        p->pos = j;
    }
    else
    if (isdigit (c) || c == '.'
        || ((c == '-' || c == '+') && (isdigit (c1) || c1 == '.'))) {
        size_t j = i + 1;
        while (j < p->len && (isalnum ((unsigned char) s [j]) || s [j] == '.'
                              || ((s [j] == '+' || s [j] == '-')
                                  && (s [j - 1] == 'e' || s [j - 1] == 'E'))))
            j++;
        if (!s_parse_num (s + i, j - i, &p->num)) {
            s_fail (p, i, "'%.*s' is not a number", (int) (j - i > 24 ? 24
                                                              : j - i),
                    s + i);
            p->tok = K_BAD;
            return;
        }
        p->tok = K_NUM;
        p->pos = j;
    }
    else
    if (s_ident_start (c)) {
        size_t j = i + 1;
        while (j < p->len && s_ident_char ((unsigned char) s [j]))
            j++;
        size_t n = j - i;
        const char *w = s + i;
        p->tok = s_word_is (w, n, "AND") ? K_AND
               : s_word_is (w, n, "OR") ? K_OR
               : s_word_is (w, n, "NOT") ? K_NOT
               : s_word_is (w, n, "IN") ? K_IN
               : s_word_is (w, n, "BETWEEN") ? K_BETWEEN
               : s_word_is (w, n, "IS") ? K_IS
               : s_word_is (w, n, "NULL") ? K_NULL
               : s_word_is (w, n, "TRUE") ? K_TRUE
               : s_word_is (w, n, "FALSE") ? K_FALSE
               : K_IDENT;
        if (p->tok == K_IDENT) {
            p->text = (char *) malloc (n + 1);
            assert (p->text);
            memcpy (p->text, w, n);
            p->text [n] = 0;
            p->text_len = n;
        }
        p->pos = j;
    }
    else {
        if (c >= 0x20 && c < 0x7f)
            s_fail (p, i, "unexpected character '%c'", c);
        else
            s_fail (p, i, "unexpected byte 0x%02x", c);
        p->tok = K_BAD;
        return;
    }
    p->tlen = p->pos - p->tpos;
}

//  --------------------------------------------------------------------
//  Parser: each function returns a node, or NULL after s_fail.

static node_t *s_parse_or (parser_t *p);

static bool
s_is_value (tok_t t)
{
    return t == K_IDENT || t == K_STR || t == K_NUM || t == K_TRUE
        || t == K_FALSE;
}

//  Takes the current value token into v and advances. Returns 0, or -1
//  after s_fail (what names what was expected).
static int
s_take_value (parser_t *p, val_t *v, bool literal_only, const char *what)
{
    memset (v, 0, sizeof *v);
    char buf [40];
    if (!s_is_value (p->tok) || (literal_only && p->tok == K_IDENT)) {
        if (!p->failed)
            s_fail (p, p->tpos, "expected %s but found %s", what,
                    s_tok_desc (p, buf, sizeof buf));
        return -1;
    }
    if (p->tok == K_IDENT) {
        v->type = streq (p->text, "TAGS") ? V_TAGS : V_PROP;
        v->s = p->text;
        v->len = p->text_len;
        p->text = NULL;
    }
    else
    if (p->tok == K_STR) {
        v->type = V_STR;
        v->s = p->text;
        v->len = p->text_len;
        p->text = NULL;
    }
    else
    if (p->tok == K_NUM) {
        v->type = V_NUM;
        v->num = p->num;
    }
    else {
        v->type = V_BOOL;
        v->b = p->tok == K_TRUE;
    }
    s_next (p);
    return 0;
}

static int
s_expect (parser_t *p, tok_t tok, const char *what)
{
    char buf [40];
    if (p->tok != tok) {
        if (!p->failed)
            s_fail (p, p->tpos, "expected %s but found %s", what,
                    s_tok_desc (p, buf, sizeof buf));
        return -1;
    }
    s_next (p);
    return 0;
}

static int
s_depth_in (parser_t *p)
{
    if (++p->depth > ZR_FILTER_DEPTH_MAX) {
        s_fail (p, p->tpos, "nested more than %d deep", ZR_FILTER_DEPTH_MAX);
        return -1;
    }
    return 0;
}

//  value cmp value, with a boolean on either side only for = and <>.
static node_t *
s_parse_cmp (parser_t *p, val_t *left)
{
    node_t *n = s_node_new (N_CMP);
    n->op = p->op;
    size_t op_pos = p->tpos;
    s_node_add_val (n, left);
    s_next (p);
    val_t right;
    if (s_take_value (p, &right, false, "a property or a literal after "
                                        "the operator")) {
        s_node_free (&n);
        return NULL;
    }
    s_node_add_val (n, &right);
    if ((n->vals [0].type == V_BOOL || n->vals [1].type == V_BOOL)
        && n->op != OP_EQ && n->op != OP_NE) {
        s_fail (p, op_pos, "TRUE and FALSE compare only with = or <>");
        s_node_free (&n);
    }
    return n;
}

static node_t *
s_parse_pred (parser_t *p)
{
    char buf [40];
    if (p->tok == K_LPAREN) {
        if (s_depth_in (p))
            return NULL;
        s_next (p);
        node_t *n = s_parse_or (p);
        if (n && s_expect (p, K_RPAREN, "')'"))
            s_node_free (&n);
        p->depth--;
        return n;
    }
    val_t v;
    if (s_take_value (p, &v, false, "a property, a literal, NOT or '('"))
        return NULL;
    if (p->tok == K_OP)
        return s_parse_cmp (p, &v);

    bool negate = false;
    if (p->tok == K_NOT) {
        negate = true;
        s_next (p);
        if (p->tok != K_IN && p->tok != K_BETWEEN) {
            if (!p->failed)
                s_fail (p, p->tpos, "expected IN or BETWEEN after NOT but "
                        "found %s", s_tok_desc (p, buf, sizeof buf));
            free (v.s);
            return NULL;
        }
    }
    if (p->tok == K_IN) {
        node_t *n = s_node_new (N_IN);
        n->negate = negate;
        s_node_add_val (n, &v);
        s_next (p);
        if (s_expect (p, K_LPAREN, "'(' after IN")) {
            s_node_free (&n);
            return NULL;
        }
        while (true) {
            val_t item;
            if (s_take_value (p, &item, true, "a literal in the IN list")) {
                s_node_free (&n);
                return NULL;
            }
            s_node_add_val (n, &item);
            if (p->tok == K_COMMA) {
                s_next (p);
                continue;
            }
            if (s_expect (p, K_RPAREN, "',' or ')' in the IN list")) {
                s_node_free (&n);
                return NULL;
            }
            break;
        }
        return n;
    }
    if (p->tok == K_BETWEEN) {
        node_t *n = s_node_new (N_BETWEEN);
        n->negate = negate;
        s_node_add_val (n, &v);
        s_next (p);
        val_t lo, hi;
        if (s_take_value (p, &lo, false, "a value after BETWEEN")) {
            s_node_free (&n);
            return NULL;
        }
        s_node_add_val (n, &lo);
        if (s_expect (p, K_AND, "AND in BETWEEN ... AND ...")
            || s_take_value (p, &hi, false, "a value after BETWEEN ... AND")) {
            s_node_free (&n);
            return NULL;
        }
        s_node_add_val (n, &hi);
        for (size_t i = 0; i < 3; i++)
            if (n->vals [i].type == V_BOOL) {
                s_fail (p, p->tpos, "TRUE and FALSE cannot be in BETWEEN");
                s_node_free (&n);
                return NULL;
            }
        return n;
    }
    if (p->tok == K_IS) {
        node_t *n = s_node_new (N_ISNULL);
        s_node_add_val (n, &v);
        s_next (p);
        if (p->tok == K_NOT) {
            n->negate = true;
            s_next (p);
        }
        if (s_expect (p, K_NULL, "NULL after IS")) {
            s_node_free (&n);
            return NULL;
        }
        return n;
    }
    if (v.type == V_BOOL) {
        node_t *n = s_node_new (N_CONST);
        n->truth = v.b ? T : F;
        return n;
    }
    if (!p->failed)
        s_fail (p, p->tpos, "expected a comparison, IN, BETWEEN or IS after "
                "%s but found %s", v.type == V_PROP || v.type == V_TAGS
                ? "a property" : "a literal",
                s_tok_desc (p, buf, sizeof buf));
    free (v.s);
    return NULL;
}

static node_t *
s_parse_not (parser_t *p)
{
    if (p->tok != K_NOT)
        return s_parse_pred (p);
    if (s_depth_in (p))
        return NULL;
    s_next (p);
    node_t *kid = s_parse_not (p);
    p->depth--;
    if (!kid)
        return NULL;
    node_t *n = s_node_new (N_NOT);
    s_node_add_kid (n, kid);
    return n;
}

static node_t *
s_parse_list (parser_t *p, tok_t sep, ntype_t type,
              node_t *(*sub) (parser_t *))
{
    node_t *first = sub (p);
    if (!first)
        return NULL;
    if (p->tok != sep)
        return first;
    node_t *n = s_node_new (type);
    s_node_add_kid (n, first);
    while (p->tok == sep) {
        s_next (p);
        node_t *kid = sub (p);
        if (!kid) {
            s_node_free (&n);
            return NULL;
        }
        s_node_add_kid (n, kid);
    }
    return n;
}

static node_t *
s_parse_and (parser_t *p)
{
    return s_parse_list (p, K_AND, N_AND, s_parse_not);
}

static node_t *
s_parse_or (parser_t *p)
{
    return s_parse_list (p, K_OR, N_OR, s_parse_and);
}

//  --------------------------------------------------------------------
//  Tag expressions

static int
s_tag_compile (zr_filter_t *self, const char *s, size_t len, parser_t *p)
{
    size_t i = 0;
    bool need_tag = false;
    while (true) {
        while (i < len && isspace ((unsigned char) s [i]))
            i++;
        if (i >= len) {
            if (need_tag) {
                s_fail (p, i, "expected a tag after '||'");
                return -1;
            }
            break;
        }
        size_t start = i;
        while (i < len && !isspace ((unsigned char) s [i]) && s [i] != '|'
               && s [i] != 0)
            i++;
        if (i < len && s [i] == 0) {
            s_fail (p, i, "unexpected byte 0x00");
            return -1;
        }
        if (i == start) {
            s_fail (p, i, "expected a tag but found '|'");
            return -1;
        }
        if (i - start == 1 && s [start] == '*')
            self->all = true;
        else {
            self->tags = (char **) realloc (self->tags, (self->ntags + 1)
                                                        * sizeof (char *));
            self->tag_lens = (size_t *) realloc (self->tag_lens,
                                                 (self->ntags + 1)
                                                 * sizeof (size_t));
            assert (self->tags && self->tag_lens);
            char *tag = (char *) malloc (i - start + 1);
            assert (tag);
            memcpy (tag, s + start, i - start);
            tag [i - start] = 0;
            self->tags [self->ntags] = tag;
            self->tag_lens [self->ntags++] = i - start;
        }
        while (i < len && isspace ((unsigned char) s [i]))
            i++;
        if (i >= len)
            break;
        if (s [i] == '|' && i + 1 < len && s [i + 1] == '|') {
            i += 2;
            need_tag = true;
            continue;
        }
        s_fail (p, i, "expected '||' between tags but found '%c'",
                s [i] >= 0x20 && s [i] < 0x7f ? s [i] : '?');
        return -1;
    }
    //  An empty expression subscribes to everything, as RocketMQ's does.
    if (self->ntags == 0)
        self->all = true;
    return 0;
}

//  --------------------------------------------------------------------

zr_filter_t *
zr_filter_new (const char *type, const char *expr, size_t len, char *err,
               size_t err_size)
{
    if (err && err_size)
        err [0] = 0;
    parser_t p;
    memset (&p, 0, sizeof p);
    p.s = expr ? expr : "";
    p.len = expr ? len : 0;
    p.err = err;
    p.err_size = err_size;
    bool sql;
    if (!type || !*type || streq (type, "tag"))
        sql = false;
    else
    if (streq (type, "sql"))
        sql = true;
    else {
        if (err && err_size)
            snprintf (err, err_size, "filter type '%.32s' must be tag or sql",
                      type);
        return NULL;
    }
    if (p.len > ZR_FILTER_EXPR_MAX) {
        s_fail (&p, ZR_FILTER_EXPR_MAX, "expression longer than %d bytes",
                ZR_FILTER_EXPR_MAX);
        return NULL;
    }
    zr_filter_t *self = (zr_filter_t *) zmalloc (sizeof (zr_filter_t));
    assert (self);
    self->sql = sql;
    if (!sql) {
        if (s_tag_compile (self, p.s, p.len, &p)) {
            zr_filter_destroy (&self);
            return NULL;
        }
        return self;
    }
    s_next (&p);
    if (p.tok == K_EOF)
        s_fail (&p, 0, "empty expression");
    else {
        self->root = s_parse_or (&p);
        char buf [40];
        if (self->root && p.tok != K_EOF && !p.failed)
            s_fail (&p, p.tpos, "expected AND, OR or the end but found %s",
                    s_tok_desc (&p, buf, sizeof buf));
    }
    zstr_free (&p.text);
    if (p.failed) {
        zr_filter_destroy (&self);
        return NULL;
    }
    return self;
}

void
zr_filter_destroy (zr_filter_t **self_p)
{
    assert (self_p);
    zr_filter_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->ntags; i++)
        free (self->tags [i]);
    free (self->tags);
    free (self->tag_lens);
    s_node_free (&self->root);
    free (self);
    *self_p = NULL;
}

bool
zr_filter_all (const zr_filter_t *self)
{
    assert (self);
    return !self->sql && self->all;
}

//  --------------------------------------------------------------------
//  Evaluation

typedef struct {
    const char *tags;
    size_t tags_len;
    zr_filter_prop_fn *prop;
    void *arg;
} msg_t;

typedef enum { R_MISSING, R_STR, R_NUM, R_BOOL } rtype_t;

typedef struct {
    rtype_t type;
    const char *s;
    size_t len;
    num_t num;
    bool b;
} rv_t;

static void
s_resolve (const val_t *v, const msg_t *m, rv_t *r)
{
    memset (r, 0, sizeof *r);
    switch (v->type) {
        case V_TAGS:
            if (m->tags_len > 0) {
                r->type = R_STR;
                r->s = m->tags;
                r->len = m->tags_len;
            }
            break;
        case V_PROP:
            if (m->prop && m->prop (v->s, &r->s, &r->len, m->arg))
                r->type = R_STR;
            break;
        case V_STR:
            r->type = R_STR;
            r->s = v->s;
            r->len = v->len;
            break;
        case V_NUM:
            r->type = R_NUM;
            r->num = v->num;
            break;
        case V_BOOL:
            r->type = R_BOOL;
            r->b = v->b;
            break;
    }
}

//  Orders a against b: 0 with *c set, or -1 when they do not compare
//  (UNKNOWN): a side missing, a non-numeric string against a number.
static int
s_order (const rv_t *a, const rv_t *b, int *c)
{
    if (a->type == R_MISSING || b->type == R_MISSING)
        return -1;
    if (a->type == R_NUM || b->type == R_NUM) {
        num_t x, y;
        if (a->type == R_NUM)
            x = a->num;
        else
        if (a->type != R_STR || !s_parse_num (a->s, a->len, &x))
            return -1;
        if (b->type == R_NUM)
            y = b->num;
        else
        if (b->type != R_STR || !s_parse_num (b->s, b->len, &y))
            return -1;
        *c = s_num_cmp (&x, &y);
        return 0;
    }
    if (a->type == R_BOOL || b->type == R_BOOL) {
        bool x, y;
        const rv_t *side [2] = { a, b };
        bool *out [2] = { &x, &y };
        for (int i = 0; i < 2; i++) {
            if (side [i]->type == R_BOOL)
                *out [i] = side [i]->b;
            else
            if (s_word_is (side [i]->s, side [i]->len, "true"))
                *out [i] = true;
            else
            if (s_word_is (side [i]->s, side [i]->len, "false"))
                *out [i] = false;
            else
                return -1;
        }
        *c = x == y ? 0 : 1;
        return 0;
    }
    size_t n = a->len < b->len ? a->len : b->len;
    int r = n ? memcmp (a->s, b->s, n) : 0;
    if (r == 0)
        r = (a->len > b->len) - (a->len < b->len);
    *c = (r > 0) - (r < 0);
    return 0;
}

static int
s_apply (op_t op, int c)
{
    bool r = op == OP_EQ ? c == 0
           : op == OP_NE ? c != 0
           : op == OP_LT ? c < 0
           : op == OP_LE ? c <= 0
           : op == OP_GT ? c > 0
           : c >= 0;
    return r ? T : F;
}

static int
s_compare (const val_t *a, const val_t *b, op_t op, const msg_t *m)
{
    rv_t x, y;
    s_resolve (a, m, &x);
    s_resolve (b, m, &y);
    int c;
    if (s_order (&x, &y, &c))
        return U;
    return s_apply (op, c);
}

static int
s_not (int v)
{
    return v == U ? U : v == T ? F : T;
}

static int
s_eval (const node_t *n, const msg_t *m)
{
    switch (n->type) {
        case N_CONST:
            return n->truth;
        case N_NOT:
            return s_not (s_eval (n->kids [0], m));
        case N_AND: {
            int r = T;
            for (size_t i = 0; i < n->nkids && r != F; i++) {
                int v = s_eval (n->kids [i], m);
                if (v == F)
                    r = F;
                else
                if (v == U)
                    r = U;
            }
            return r;
        }
        case N_OR: {
            int r = F;
            for (size_t i = 0; i < n->nkids && r != T; i++) {
                int v = s_eval (n->kids [i], m);
                if (v == T)
                    r = T;
                else
                if (v == U)
                    r = U;
            }
            return r;
        }
        case N_CMP:
            return s_compare (&n->vals [0], &n->vals [1], n->op, m);
        case N_IN: {
            //  x IN (a, b) is x = a OR x = b
            int r = F;
            for (size_t i = 1; i < n->nvals && r != T; i++) {
                int v = s_compare (&n->vals [0], &n->vals [i], OP_EQ, m);
                if (v == T)
                    r = T;
                else
                if (v == U)
                    r = U;
            }
            return n->negate ? s_not (r) : r;
        }
        case N_BETWEEN: {
            //  x BETWEEN a AND b is x >= a AND x <= b
            int lo = s_compare (&n->vals [0], &n->vals [1], OP_GE, m);
            int hi = s_compare (&n->vals [0], &n->vals [2], OP_LE, m);
            int r = (lo == F || hi == F) ? F : (lo == U || hi == U) ? U : T;
            return n->negate ? s_not (r) : r;
        }
        case N_ISNULL: {
            rv_t x;
            s_resolve (&n->vals [0], m, &x);
            bool null = x.type == R_MISSING;
            return (null != n->negate) ? T : F;
        }
    }
    return U;
}

int
zr_filter_eval (const zr_filter_t *self, const char *tags, size_t tags_len,
                zr_filter_prop_fn *prop, void *arg)
{
    assert (self);
    if (!self->sql) {
        if (self->all)
            return T;
        for (size_t i = 0; i < self->ntags; i++)
            if (self->tag_lens [i] == tags_len
                && memcmp (self->tags [i], tags, tags_len) == 0)
                return T;
        return F;
    }
    msg_t m = { tags ? tags : "", tags ? tags_len : 0, prop, arg };
    return s_eval (self->root, &m);
}

static bool
s_meta_prop (const char *name, const char **value, size_t *len, void *arg)
{
    const zr_obj_t *props = (const zr_obj_t *) arg;
    size_t n = zr_obj_size (props), name_len = strlen (name);
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t klen;
        if (zr_obj_str (zr_obj_key_at (props, i), &k, &klen) == ZR_FIELD_OK
            && klen == name_len && memcmp (k, name, klen) == 0)
            return zr_obj_str (zr_obj_val_at (props, i), value, len)
                   == ZR_FIELD_OK;
    }
    return false;
}

bool
zr_filter_match_meta (const zr_filter_t *self, const void *meta,
                      size_t size)
{
    assert (self);
    if (zr_filter_all (self))
        return true;
    const char *why;
    zr_hdr_t *hdr = zr_hdr_decode (meta, size, &why);
    if (!hdr)
        return false;
    const zr_obj_t *root = zr_hdr_root (hdr);
    const char *tags = "";
    size_t tags_len = 0;
    if (zr_field_str (root, "tags", &tags, &tags_len) != ZR_FIELD_OK) {
        tags = "";
        tags_len = 0;
    }
    const zr_obj_t *props = zr_obj_get (root, "props");
    bool has_props = props && zr_obj_is_map (props);
    int r = zr_filter_eval (self, tags, tags_len,
                            has_props ? s_meta_prop : NULL, (void *) props);
    zr_hdr_destroy (&hdr);
    return r == T;
}

//  --------------------------------------------------------------------
//  Cache

typedef struct {
    zr_filter_t *filter;
    uint64_t used;
} centry_t;

struct _zr_filter_cache_t {
    zhashx_t *map;          //  "t:" or "s:" + expr -> centry_t
    size_t max;
    uint64_t tick;
    size_t compiled;
    size_t hits;
};

static void
s_centry_free (void **item)
{
    centry_t *e = (centry_t *) *item;
    if (e) {
        zr_filter_destroy (&e->filter);
        free (e);
        *item = NULL;
    }
}

zr_filter_cache_t *
zr_filter_cache_new (size_t max)
{
    zr_filter_cache_t *self =
        (zr_filter_cache_t *) zmalloc (sizeof (zr_filter_cache_t));
    assert (self);
    self->map = zhashx_new ();
    assert (self->map);
    zhashx_set_destructor (self->map, s_centry_free);
    self->max = max ? max : ZR_FILTER_CACHE_MAX;
    return self;
}

void
zr_filter_cache_destroy (zr_filter_cache_t **self_p)
{
    assert (self_p);
    zr_filter_cache_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->map);
    free (self);
    *self_p = NULL;
}

const zr_filter_t *
zr_filter_cache_get (zr_filter_cache_t *self, const char *type,
                     const char *expr, size_t len, char *err,
                     size_t err_size)
{
    assert (self);
    bool sql = type && streq (type, "sql");
    if (!expr)
        len = 0;
    if (len > ZR_FILTER_EXPR_MAX || memchr (expr ? expr : "", 0, len))
        return zr_filter_new (type, expr, len, err, err_size);  //  NULL
    char *key = (char *) malloc (len + 3);
    assert (key);
    key [0] = sql ? 's' : 't';
    key [1] = ':';
    if (len)
        memcpy (key + 2, expr, len);
    key [len + 2] = 0;
    centry_t *e = (centry_t *) zhashx_lookup (self->map, key);
    if (e) {
        e->used = ++self->tick;
        self->hits++;
        free (key);
        return e->filter;
    }
    zr_filter_t *filter = zr_filter_new (type, expr, len, err, err_size);
    if (!filter) {
        free (key);
        return NULL;
    }
    self->compiled++;
    if (zhashx_size (self->map) >= self->max) {
        const char *oldest = NULL;
        uint64_t min = UINT64_MAX;
        for (centry_t *c = (centry_t *) zhashx_first (self->map); c;
             c = (centry_t *) zhashx_next (self->map))
            if (c->used < min) {
                min = c->used;
                oldest = (const char *) zhashx_cursor (self->map);
            }
        if (oldest) {
            char *gone = strdup (oldest);
            zhashx_delete (self->map, gone);
            free (gone);
        }
    }
    e = (centry_t *) zmalloc (sizeof (centry_t));
    assert (e);
    e->filter = filter;
    e->used = ++self->tick;
    zhashx_insert (self->map, key, e);
    free (key);
    return filter;
}

size_t
zr_filter_cache_compiled (zr_filter_cache_t *self)
{
    assert (self);
    return self->compiled;
}

size_t
zr_filter_cache_hits (zr_filter_cache_t *self)
{
    assert (self);
    return self->hits;
}
