/*
 * Text, attachments and envelopes of a corpus of real-world shapes built here:
 * ISO-2022-JP, Shift_JIS and EUC-JP subjects and bodies; UTF-8 quoted-printable
 * and base64; a Shift_JIS body mislabelled ISO-2022-JP; multipart/alternative
 * nested in multipart/mixed with an RFC 2231 attachment name; HTML only; a
 * 200 KB header block; the text cap. Every decoded string is compared exactly.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/mime/envelope.h"
#include "daemon/mime/text.h"

#define WORD    "手紙の検索テスト"
#define SUBJECT "件名 " WORD
#define BODY    "本文: " WORD

static MimeMessage *parse(const char *raw) {
        MimeMessage *m = NULL;

        assert(mime_message_new_data(raw, strlen(raw), &m) == 0);
        return m;
}

/* Asserts the text of raw and its decoded subject. */
static void check(const char *raw, const char *subject, const char *text) {
        MimeMessage *m = parse(raw);
        StoreEnvelope e;
        size_t len;
        char *t;

        assert(mime_message_text(m, MIME_TEXT_MAX, &t, &len) == 0);
        if (!t || strcmp(t, text) != 0) {
                fprintf(stderr, "text: got \"%s\", want \"%s\"\n", t ? t : "(null)", text);
                abort();
        }
        assert(len == strlen(text));
        free(t);
        mime_message_free(m);
        assert(mime_envelope_parse(raw, strlen(raw), &e) == 0);
        if (subject && (!e.subject || strcmp(e.subject, subject) != 0)) {
                fprintf(stderr, "subject: got \"%s\", want \"%s\"\n", e.subject ? e.subject : "(null)", subject);
                abort();
        }
        mime_envelope_clear(&e);
}

static void test_japanese(void) {
        check("Subject: =?ISO-2022-JP?B?GyRCN29MPhsoQiAbJEI8ajtmJE44ITp3JUYlOSVIGyhC?=\r\n"
              "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
              "\r\n"
              "\x1b\x24\x42\x4b\x5c\x4a\x38\x1b\x28\x42\x3a\x20\x1b\x24\x42\x3c\x6a\x3b\x66\x24\x4e\x38\x21"
              "\x3a\x77\x25\x46\x25\x39\x25\x48\x1b\x28\x42"
              "\r\n",
              SUBJECT, BODY "\n");
        check("Subject: =?Shift_JIS?B?jI+WvCCO6I6GgsyMn431g2WDWINn?=\r\n"
              "MIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=Shift_JIS\r\n"
              "Content-Transfer-Encoding: base64\r\n"
              "\r\n"
              "lnuVtjogjuiOhoLMjJ+N9YNlg1iDZw0K\r\n",
              SUBJECT, BODY "\n");
        check("Subject: =?EUC-JP?B?t+/MviC86rvmpM64obr3pcaluaXI?=\r\n"
              "Content-Type: text/plain; charset=\"euc-jp\"\r\n"
              "Content-Transfer-Encoding: 8bit\r\n"
              "\r\n"
              "\xcb\xdc\xca\xb8\x3a\x20\xbc\xea\xbb\xe6\xa4\xce\xb8\xa1\xba\xf7\xa5\xc6\xa5\xb9\xa5\xc8"
              "\r\n",
              SUBJECT, BODY "\n");
}

static void test_utf8(void) {
        check("Subject: =?UTF-8?Q?=E4=BB=B6=E5=90=8D=20=E6=89=8B=E7=B4=99=E3=81=AE=E6=A4=9C=E7=B4=A2=E3=83=86=E3"
              "=82=B9=E3=83=88?=\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n"
              "\r\n"
              "=E6=9C=AC=E6=96=87: =E6=89=8B=E7=B4=99=E3=81=AE=E6=A4=9C=E7=B4=A2=E3=83=86=\r\n"
              "=E3=82=B9=E3=83=88\r\n",
              SUBJECT, BODY "\n");
        check("Subject: =?UTF-8?B?5Lu25ZCNIOaJi+e0meOBruaknOe0ouODhuOCueODiA==?=\r\n"
              "Content-Type: text/plain; charset=UTF-8\r\n"
              "Content-Transfer-Encoding: base64\r\n"
              "\r\n"
              "5pys5paHOiDmiYvntJnjga7mpJzntKLjg4bjgrnjg4gNCg==\r\n",
              SUBJECT, BODY "\n");
}

/* Raw Shift_JIS labelled ISO-2022-JP (a common mailer bug), and UTF-8 labelled us-ascii. */
static void test_mislabelled(void) {
        check("Subject: x\r\n"
              "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
              "\r\n"
              "\x96\x7b\x95\xb6\x3a\x20\x8e\xe8\x8e\x86\x82\xcc\x8c\x9f\x8d\xf5\x83\x65\x83\x58\x83\x67"
              "\r\n",
              "x", BODY "\n");
        check("Content-Type: text/plain; charset=us-ascii\r\n"
              "\r\n" BODY "\r\n",
              NULL, BODY "\n");
        check("Content-Type: text/plain; charset=x-unknown-charset\r\n"
              "\r\n"
              "Gr\xfc\xdf"
              "e\r\n",
              NULL, "Grüße\n");
}

static const char nested[] = "Subject: nested\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
                             "\r\n"
                             "--outer\r\n"
                             "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
                             "\r\n"
                             "--inner\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "\r\n"
                             "plain " WORD "\r\n"
                             "--inner\r\n"
                             "Content-Type: text/html; charset=utf-8\r\n"
                             "\r\n"
                             "<p>html</p>\r\n"
                             "--inner--\r\n"
                             "--outer\r\n"
                             "Content-Type: application/pdf\r\n"
                             "Content-Disposition: attachment;\r\n"
                             " filename*=UTF-8''%E6%89%8B%E7%B4%99%E3%81%AE%E6%B7%BB%E4%BB%98%2E%70%64%66\r\n"
                             "Content-Transfer-Encoding: base64\r\n"
                             "\r\n"
                             "JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n"
                             "--outer\r\n"
                             "Content-Type: text/plain; name=\"notes.txt\"\r\n"
                             "Content-Disposition: inline; filename=\"notes.txt\"\r\n"
                             "\r\n"
                             "inline notes\r\n"
                             "--outer--\r\n";

static void test_nested(void) {
        MimeMessage *m = parse(nested);
        MimeAttachment *att;
        size_t n;
        char buf[64];
        int fd;
        ssize_t r;

        check(nested, "nested", "plain " WORD);
        assert(mime_message_attachments(m, &att, &n) == 0);
        assert(n == 2);
        assert(strcmp(att[0].name, "手紙の添付.pdf") == 0);
        assert(strcmp(att[0].type, "application/pdf") == 0);
        assert(att[0].size == 19); /* "%PDF-1.4\n%äüöß\n" */
        assert(strcmp(att[1].name, "notes.txt") == 0);
        assert(strcmp(att[1].type, "text/plain") == 0);
        mime_attachments_free(att, n);

        fd = memfd_create("attachment", 0);
        assert(fd >= 0);
        assert(mime_message_write_attachment(m, 0, fd) == 0);
        assert(mime_message_write_attachment(m, 2, fd) == MIME_TEXT_E_NONE);
        r = pread(fd, buf, sizeof(buf), 0);
        assert(r == 19 && memcmp(buf, "%PDF-1.4\n%\xc3\xa4\xc3\xbc\xc3\xb6\xc3\x9f\n", 19) == 0);
        close(fd);
        mime_message_free(m);
}

static void test_html(void) {
        check("Content-Type: text/html; charset=Shift_JIS\r\n"
              "\r\n"
              "<html><head><title>t</title><style>p{color:red}</style></head><body>\r\n"
              "<p>\x96\x7b\x95\xb6\x3a\x20\x8e\xe8\x8e\x86\x82\xcc\x8c\x9f\x8d\xf5\x83\x65\x83\x58\x83\x67"
              "</p><!-- hidden -->\r\n"
              "<div>a &amp; b&nbsp;&lt;c&gt; &#x624B;&#32025;</div><script>var x = 1;</script>tail<br>end\r\n"
              "</body></html>\r\n",
              NULL, BODY "\n\na & b <c> 手紙\ntail\nend\n");
}

/* A 200 KB header block: the text is still found, the subject still decoded. */
static void test_big_headers(void) {
        size_t cap = 256 * 1024, len = 0;
        char *raw = malloc(cap);

        assert(raw);
        len += sprintf(raw + len, "Subject: =?UTF-8?B?5Lu25ZCNIOaJi+e0meOBruaknOe0ouODhuOCueODiA==?=\r\n");
        while (len < 200 * 1024)
                len += sprintf(raw + len, "Received: from relay%zu.example.org by mx.example.org; Tue, 1 Jul 2003\r\n",
                               len);
        len += sprintf(raw + len, "Content-Type: text/plain; charset=utf-8\r\n\r\nafter the headers\r\n");
        check(raw, SUBJECT, "after the headers\n");
        free(raw);
}

/* The cap cuts on a character boundary; the fd path reads the same message. */
static void test_cap_and_fd(void) {
        const char *raw = "Content-Type: text/plain; charset=utf-8\r\n\r\n" WORD "\r\n";
        MimeMessage *m;
        size_t len;
        char *t, out[128];
        int fd, pfd;
        ssize_t r;

        m = parse(raw);
        assert(mime_message_text(m, 7, &t, &len) == 0);
        assert(len == 6 && strcmp(t, "手紙") == 0);
        free(t);
        mime_message_free(m);

        fd = memfd_create("msg", 0);
        assert(fd >= 0 && write(fd, raw, strlen(raw)) == (ssize_t)strlen(raw));
        assert(lseek(fd, 0, SEEK_SET) == 0);
        assert(mime_message_new_fd(fd, &m) == 0);
        pfd = memfd_create("out", 0);
        assert(mime_message_write_text(m, pfd) == 0);
        r = pread(pfd, out, sizeof(out) - 1, 0);
        assert(r == (ssize_t)strlen(WORD "\n"));
        out[r] = '\0';
        assert(strcmp(out, WORD "\n") == 0);
        mime_message_free(m);
        close(pfd);
        close(fd);

        m = parse("Content-Type: image/png\r\n\r\nxx\r\n");
        assert(mime_message_text(m, MIME_TEXT_MAX, &t, &len) == 0 && !t && len == 0);
        mime_message_free(m);
}

int main(void) {
        test_japanese();
        test_utf8();
        test_mislabelled();
        test_nested();
        test_html();
        test_big_headers();
        test_cap_and_fd();
        printf("ok\n");
        return 0;
}
