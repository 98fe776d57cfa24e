/*
 * The parser's test table: name, server bytes, expected events. Expectations were
 * printed with TEGAMI_TEST_DUMP=1 and checked by hand against RFC 3501/9051.
 */
static const Case cases[] = {
        C("dovecot greeting", "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n",
          "STATUS * OK [CAPABILITY (IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN)] \"Dovecot (Debian) ready.\"\n"),
        C("login with capabilities", "a1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE QUOTA] Logged in\r\n",
          "STATUS a1 OK [CAPABILITY (IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE QUOTA)] \"Logged in\"\n"),
        C("capability", "* CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS AUTH=PLAIN AUTH=XOAUTH2 LOGINDISABLED\r\na0 OK Pre-login capabilities listed, post-login capabilities have more.\r\n",
          "CAPABILITY (IMAP4rev1 IMAP4rev2 STARTTLS AUTH=PLAIN AUTH=XOAUTH2 LOGINDISABLED)\n"
          "STATUS a0 OK \"Pre-login capabilities listed, post-login capabilities have more.\"\n"),
        C("capability with trailing space", "* CAPABILITY IMAP4rev1 IDLE \r\n",
          "CAPABILITY (IMAP4rev1 IDLE)\n"),
        C("enabled", "* ENABLED CONDSTORE QRESYNC\r\n* ENABLED\r\nt1 OK Enabled.\r\n",
          "ENABLED (CONDSTORE QRESYNC)\n"
          "ENABLED ()\n"
          "STATUS t1 OK \"Enabled.\"\n"),
        C("dovecot select", "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk)\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk \\*)] Flags permitted.\r\n* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 2] First unseen.\r\n* OK [UIDVALIDITY 1764151200] UIDs valid\r\n* OK [UIDNEXT 4] Predicted next UID\r\n* OK [HIGHESTMODSEQ 12] Highest\r\na2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
          "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk)\n"
          "STATUS * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk \\*)] \"Flags permitted.\"\n"
          "EXISTS 3\n"
          "RECENT 0\n"
          "STATUS * OK [UNSEEN 2] \"First unseen.\"\n"
          "STATUS * OK [UIDVALIDITY 1764151200] \"UIDs valid\"\n"
          "STATUS * OK [UIDNEXT 4] \"Predicted next UID\"\n"
          "STATUS * OK [HIGHESTMODSEQ 12] \"Highest\"\n"
          "STATUS a2 OK [READ-WRITE] \"Select completed (0.001 + 0.000 secs).\"\n"),
        C("qresync select", "* OK [CLOSED] Previous mailbox closed.\r\n* VANISHED (EARLIER) 1:3,5,7:9\r\n* VANISHED 10\r\n* 2 FETCH (UID 11 FLAGS (\\Seen) MODSEQ (20))\r\n* OK [NOMODSEQ] No permanent modsequences\r\na3 OK [READ-ONLY] Examine completed.\r\n",
          "STATUS * OK [CLOSED] \"Previous mailbox closed.\"\n"
          "VANISHED earlier 1:3,5,7:9\n"
          "VANISHED 10\n"
          "FETCH 2 uid=11 modseq=20 flags=(\\Seen)\n"
          "STATUS * OK [NOMODSEQ] \"No permanent modsequences\"\n"
          "STATUS a3 OK [READ-ONLY] \"Examine completed.\"\n"),
        C("fetch with body literal", "* 1 FETCH (UID 5 MODSEQ (12) FLAGS (\\Seen $Label1) RFC822.SIZE 43 INTERNALDATE \"26-Nov-2026 10:00:00 +0000\" ENVELOPE (\"Thu, 26 Nov 2026 10:00:00 +0000\" \"Hello\" ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<1@example.org>\") BODY[] {43}\r\nSubject: Hello\r\n\r\nHi Bob, see you (soon)}\r\n)\r\na4 OK Fetch completed (0.002 + 0.000 secs).\r\n",
          "BODY_START 1 uid=5 BODY[] size=43\n"
          "BODY_DATA 1 uid=5 BODY[] size=43 \"Subject: Hello\\x0d\\x0a\\x0d\\x0aHi Bob, see you (soon)}\\x0d\\x0a\"\n"
          "BODY_END 1 uid=5 BODY[] size=43\n"
          "FETCH 1 uid=5 modseq=12 flags=(\\Seen $Label1) size=43 date=\"26-Nov-2026 10:00:00 +0000\"/1795687200 envelope=(\"Thu, 26 Nov 2026 10:00:00 +0000\" \"Hello\" ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<1@example.org>\") BODY[]=43/streamed\n"
          "STATUS a4 OK \"Fetch completed (0.002 + 0.000 secs).\"\n"),
        C("uid after body", "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {26}\r\nSubject: Hi\r\nFrom: a@b\r\n\r\n UID 7 FLAGS ())\r\n",
          "BODY_START 2 uid=0 BODY[HEADER.FIELDS (SUBJECT FROM)] size=26\n"
          "BODY_DATA 2 uid=0 BODY[HEADER.FIELDS (SUBJECT FROM)] size=26 \"Subject: Hi\\x0d\\x0aFrom: a@b\\x0d\\x0a\\x0d\\x0a\"\n"
          "BODY_END 2 uid=0 BODY[HEADER.FIELDS (SUBJECT FROM)] size=26\n"
          "FETCH 2 uid=7 flags=() BODY[HEADER.FIELDS (SUBJECT FROM)]=26/streamed\n"),
        CB("binary literal8 with NUL", "* 3 FETCH (UID 9 BINARY[1]<0> ~{6}\r\nab\0cd\n BINARY.SIZE[1] 6)\r\n",
          "BODY_START 3 uid=9 BINARY[1]<0> size=6\n"
          "BODY_DATA 3 uid=9 BINARY[1]<0> size=6 \"ab\\x00cd\\x0a\"\n"
          "BODY_END 3 uid=9 BINARY[1]<0> size=6\n"
          "FETCH 3 uid=9 BINARY[1]<0>=6/streamed BINARY.SIZE[1]=6\n"),
        C("empty, quoted and NIL bodies", "* 4 FETCH (UID 10 BODY[] {0}\r\n BODY[1] \"hello \\\"you\\\"\" BODY[2] NIL BODY[3] \"\" RFC822.HEADER {11}\r\nFrom: x\r\n\r\n)\r\n",
          "BODY_START 4 uid=10 BODY[] size=0\n"
          "BODY_END 4 uid=10 BODY[] size=0\n"
          "BODY_START 4 uid=10 RFC822.HEADER size=11\n"
          "BODY_DATA 4 uid=10 RFC822.HEADER size=11 \"From: x\\x0d\\x0a\\x0d\\x0a\"\n"
          "BODY_END 4 uid=10 RFC822.HEADER size=11\n"
          "BODY_START 4 uid=10 BODY[1] size=11\n"
          "BODY_DATA 4 uid=10 BODY[1] size=11 \"hello \\\"you\\\"\"\n"
          "BODY_END 4 uid=10 BODY[1] size=11\n"
          "BODY_START 4 uid=10 BODY[3] size=0\n"
          "BODY_END 4 uid=10 BODY[3] size=0\n"
          "FETCH 4 uid=10 BODY[]=0/streamed BODY[1]=11/inline BODY[2]=NIL BODY[3]=0/inline RFC822.HEADER=11/streamed\n"),
        C("rfc822 forms", "* 5 FETCH (RFC822.TEXT {2}\r\nhi RFC822 {0}\r\n UID 3)\r\n",
          "BODY_START 5 uid=0 RFC822.TEXT size=2\n"
          "BODY_DATA 5 uid=0 RFC822.TEXT size=2 \"hi\"\n"
          "BODY_END 5 uid=0 RFC822.TEXT size=2\n"
          "BODY_START 5 uid=0 RFC822 size=0\n"
          "BODY_END 5 uid=0 RFC822 size=0\n"
          "FETCH 5 uid=3 RFC822.TEXT=2/streamed RFC822=0/streamed\n"),
        C("bodystructure", "* 4 FETCH (UID 10 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL)(\"message\" \"rfc822\" (\"name\" \"fwd.eml\") NIL NIL \"7bit\" 300 (NIL \"Fwd\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL) 12 NIL (\"attachment\" (\"filename\" \"fwd.eml\")) NIL NIL) \"mixed\" (\"boundary\" \"XYZ\") NIL NIL NIL))\r\n",
          "FETCH 4 uid=10 body=((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 lines=1 ext:NIL)(\"message\" \"rfc822\" (\"name\" \"fwd.eml\") NIL NIL \"7bit\" 300 env=(NIL \"Fwd\" NIL NIL NIL NIL NIL NIL NIL NIL) body=(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 lines=1 ext:NIL) lines=12 ext:NIL dsp=\"attachment\"(\"filename\" \"fwd.eml\")) \"mixed\" ext:(\"boundary\" \"XYZ\"))\n"),
        C("body non-extensible", "* 5 FETCH (BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1))\r\n",
          "FETCH 5 body=(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 lines=1)\n"),
        C("bodystructure extensions", "* 6 FETCH (BODYSTRUCTURE ((\"text\" \"html\" NIL \"<id@x>\" \"desc\" \"quoted-printable\" 100 4 \"md5sum\" (\"inline\" NIL) (\"en\" \"de\") \"http://x/\" 42 (1 2)) (\"image\" \"png\" (\"name\" \"a.png\") NIL NIL \"base64\" 2048 NIL (\"attachment\" (\"filename\" {5}\r\na.png)) \"fr\") \"alternative\"))\r\n",
          "FETCH 6 body=((\"text\" \"html\" () \"<id@x>\" \"desc\" \"quoted-printable\" 100 lines=4 ext:\"md5sum\" dsp=\"inline\"() lang=(\"en\" \"de\") loc=\"http://x/\")(\"image\" \"png\" (\"name\" \"a.png\") NIL NIL \"base64\" 2048 ext:NIL dsp=\"attachment\"(\"filename\" \"a.png\") lang=(\"fr\")) \"alternative\")\n"),
        C("envelope groups and literals", "* 7 FETCH (ENVELOPE (NIL {5}\r\nHi\\\"x ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL ((NIL NIL \"team\" NIL)(\"Bob\" NIL \"bob\" \"b.org\") (NIL NIL NIL NIL)) NIL NIL NIL NIL))\r\n",
          "FETCH 7 envelope=(NIL \"Hi\\\\\\\"x\" (group:(NIL NIL \"undisclosed-recipients\" NIL) end-group:(NIL NIL NIL NIL)) NIL NIL (group:(NIL NIL \"team\" NIL) (\"Bob\" NIL \"bob\" \"b.org\") end-group:(NIL NIL NIL NIL)) NIL NIL NIL NIL)\n"),
        C("idle flag updates", "+ idling\r\n* 3 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (14))\r\n* 4 FETCH (UID 12 FLAGS ())\r\n* 2 EXPUNGE\r\n* 5 EXISTS\r\nDONE-tag OK Idle completed (0.001 + 4.998 secs).\r\n",
          "CONTINUATION \"idling\"\n"
          "FETCH 3 modseq=14 flags=(\\Seen \\Recent)\n"
          "FETCH 4 uid=12 flags=()\n"
          "EXPUNGE 2\n"
          "EXISTS 5\n"
          "STATUS DONE-tag OK \"Idle completed (0.001 + 4.998 secs).\"\n"),
        C("list special-use", "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n* LIST (\\HasChildren) \"/\" inbox\r\n* LIST (\\HasNoChildren \\UnMarked \\Archive) \"/\" Archive\r\n* LIST (\\Drafts \\HasNoChildren) \"/\" \"&ZeVnLIqe-\"\r\n* LIST (\\Noselect) NIL \"\"\r\n* LIST (\\Trash \\Junk \\All \\Flagged \\Important \\NonExistent \\Remote \\Noinferiors \\Marked) \"\\\\\" \"x\"\r\n",
          "LIST (\\HasNoChildren \\Sent) mask=0x4100 \"/\" \"Sent\"\n"
          "LIST (\\HasChildren) mask=0x80 \"/\" \"INBOX\"\n"
          "LIST (\\HasNoChildren \\UnMarked \\Archive) mask=0x508 \"/\" \"Archive\"\n"
          "LIST (\\Drafts \\HasNoChildren) mask=0x900 \"/\" \"&ZeVnLIqe-\"\n"
          "LIST (\\Noselect) mask=0x2 NIL \"\"\n"
          "LIST (\\Trash \\Junk \\All \\Flagged \\Important \\NonExistent \\Remote \\Noinferiors \\Marked) mask=0x1b255 \"\\\\\" \"x\"\n"),
        C("list literal mailbox", "* LIST () \".\" {5}\r\nfo\\\"o\r\n",
          "LIST () mask=0 \".\" \"fo\\\\\\\"o\"\n"),
        C("list-extended", "* LIST (\\Subscribed \\HasChildren) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n* LIST () \"/\" \"New\" (\"OLDNAME\" (\"Old\"))\r\n* LIST () \"/\" \"X\" (\"MYEXT\" (1 (2 3)) \"OTHER\" atom)\r\n* LIST () \"/\" \"Y\" ()\r\n* LSUB () \".\" \"Lists.tegami\"\r\n",
          "LIST (\\Subscribed \\HasChildren) mask=0xa0 \"/\" \"Foo\" childinfo=(\"SUBSCRIBED\")\n"
          "LIST () mask=0 \"/\" \"New\" oldname=\"Old\"\n"
          "LIST () mask=0 \"/\" \"X\"\n"
          "LIST () mask=0 \"/\" \"Y\"\n"
          "LIST LSUB () mask=0 \".\" \"Lists.tegami\"\n"),
        C("status", "* STATUS \"INBOX\" (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 1764151200 UNSEEN 3 HIGHESTMODSEQ 99 SIZE 123456 RECENT 0 DELETED 2 APPENDLIMIT 100)\r\n* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n* STATUS \"Empty\" ()\r\n",
          "MAILBOX_STATUS \"INBOX\" messages=231 recent=0 uidnext=44292 uidvalidity=1764151200 unseen=3 deleted=2 highestmodseq=99 size=123456\n"
          "MAILBOX_STATUS \"blurdybloop\" messages=231 uidnext=44292\n"
          "MAILBOX_STATUS \"Empty\"\n"),
        C("search", "* SEARCH 2 3 6\r\n* SEARCH\r\n* SEARCH 2 5 6 7 11 (MODSEQ 917162500)\r\n* SEARCH 1 \r\n",
          "SEARCH (2 3 6)\n"
          "SEARCH ()\n"
          "SEARCH (2 5 6 7 11) modseq=917162500\n"
          "SEARCH (1)\n"),
        C("esearch", "* ESEARCH (TAG \"A1\") UID ALL 1:10\r\n* ESEARCH (TAG \"a5\") UID MIN 7 MAX 3800 COUNT 15\r\n* ESEARCH (TAG \"a6\") UID COUNT 0\r\n* ESEARCH (TAG \"a7\") ALL 1:3,5 MODSEQ 1234 PARTIAL (1:10 1:3)\r\n* ESEARCH\r\n",
          "ESEARCH tag=\"A1\" uid all=1:10\n"
          "ESEARCH tag=\"a5\" uid min=7 max=3800 count=15\n"
          "ESEARCH tag=\"a6\" uid count=0\n"
          "ESEARCH tag=\"a7\" all=1:3,5 modseq=1234\n"
          "ESEARCH tag=NIL\n"),
        C("quota", "* QUOTAROOT INBOX \"User quota\"\r\n* QUOTA \"User quota\" (STORAGE 10 1024 MESSAGE 3 1000)\r\n* QUOTAROOT \"Other\"\r\n* QUOTA \"\" ()\r\n",
          "QUOTAROOT \"INBOX\" (\"User quota\")\n"
          "QUOTA \"User quota\" (STORAGE 10 1024 MESSAGE 3 1000)\n"
          "QUOTAROOT \"Other\" ()\n"
          "QUOTA \"\" ()\n"),
        C("id", "* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n* ID NIL\r\n",
          "ID (\"name\" \"Dovecot\" \"version\" NIL)\n"
          "ID NIL\n"),
        C("namespace", "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n* NAMESPACE ((\"\" \".\")(\"#mh/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" NIL))\r\n",
          "NAMESPACE ((\"\" \"/\")) NIL NIL\n"
          "NAMESPACE ((\"\" \".\")(\"#mh/\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" NIL))\n"),
        C("bye and preauth", "* PREAUTH [CAPABILITY IMAP4rev2] Logged in as alice\r\n* BYE Server shutting down.\r\n* BYE\r\n",
          "STATUS * PREAUTH [CAPABILITY (IMAP4rev2)] \"Logged in as alice\"\n"
          "STATUS * BYE \"Server shutting down.\"\n"
          "STATUS * BYE \"\"\n"),
        C("tagged codes", "a3 NO [TRYCREATE] Mailbox doesn't exist: Foo\r\na4 OK [APPENDUID 1764151200 45] Append completed.\r\n* OK [COPYUID 1764151200 3:5,7 10:13] Moved UIDs.\r\na6 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\na7 BAD [PARSE] Invalid arguments\r\na8 NO [BADCHARSET (UTF-8 \"US-ASCII\")] Unsupported\r\na8b NO [BADCHARSET] x\r\na9 OK [MODIFIED 7,9] Conditional STORE failed\r\n* OK [UIDNOTSTICKY] x\r\n* NO [ALERT] Quota at 90% {5}\r\na10 OK [XFOO bar baz] Something\r\na11 NO [SERVERBUG] Internal error occurred. Refer to server log for more information. [2026-11-26 10:00:00]\r\n* OK Searched 76% of the mailbox, ETA 0:10\r\na12 OK\r\n",
          "STATUS a3 NO [TRYCREATE] \"Mailbox doesn't exist: Foo\"\n"
          "STATUS a4 OK [APPENDUID 1764151200 45] \"Append completed.\"\n"
          "STATUS * OK [COPYUID 1764151200 3:5,7 10:13] \"Moved UIDs.\"\n"
          "STATUS a6 NO [OVERQUOTA] \"Quota exceeded (mailbox for user is full)\"\n"
          "STATUS a7 BAD [PARSE] \"Invalid arguments\"\n"
          "STATUS a8 NO [BADCHARSET (UTF-8 US-ASCII)] \"Unsupported\"\n"
          "STATUS a8b NO [BADCHARSET ()] \"x\"\n"
          "STATUS a9 OK [MODIFIED 7,9] \"Conditional STORE failed\"\n"
          "STATUS * OK [UIDNOTSTICKY] \"x\"\n"
          "STATUS * NO [ALERT] \"Quota at 90% {5}\"\n"
          "STATUS a10 OK [XFOO \"bar baz\"] \"Something\"\n"
          "STATUS a11 NO [SERVERBUG] \"Internal error occurred. Refer to server log for more information. [2026-11-26 10:00:00]\"\n"
          "STATUS * OK \"Searched 76% of the mailbox, ETA 0:10\"\n"
          "STATUS a12 OK \"\"\n"),
        C("continuations", "+ \r\n+\r\n+ dGVzdA==\r\n+ [ALERT] go on\r\n",
          "CONTINUATION \"\"\n"
          "CONTINUATION \"\"\n"
          "CONTINUATION \"dGVzdA==\"\n"
          "CONTINUATION [ALERT] \"go on\"\n"),
        C("unknown responses", "* 2 XFOO bar\r\n* SORT 2 3 4\r\n* METADATA \"INBOX\" (/private/comment {3}\r\nabc)\r\n* XBARE\r\n",
          "OTHER 2 XFOO \"bar\"\n"
          "OTHER SORT \"2 3 4\"\n"
          "OTHER METADATA \"\\\"INBOX\\\" (/private/comment {3}abc)\"\n"
          "OTHER XBARE NIL\n"),
        C("fetch unknown items", "* 8 FETCH (X-GM-LABELS (\\Inbox \"x y\") X-GM-MSGID 1278455344230334865 EMAILID (M6d99ac3275bb4e) SAVEDATE NIL UID 3)\r\n",
          "FETCH 8 uid=3 unknown=(X-GM-LABELS X-GM-MSGID EMAILID SAVEDATE)\n"),
        C("hostile: literal size overflows", "* 1 FETCH (BODY[] {99999999999999999999}\r\nabc",
          "ERROR over a limit\n"),
        C("hostile: body over max", "* 1 FETCH (BODY[] {5000000000}\r\n",
          "ERROR over a limit\n"),
        C("hostile: literal over max", "* 1 FETCH (ENVELOPE ({2000000}\r\n",
          "ERROR over a limit\n"),
        CB("hostile: NUL byte", "* OK he\0llo\r\n",
          "ERROR syntax error\n"),
        C("hostile: bare LF", "* OK hello\n",
          "ERROR syntax error\n"),
        C("hostile: CR without LF", "* OK a\rb\r\n",
          "ERROR syntax error\n"),
        C("hostile: missing CRLF", "* OK hello",
          "ERROR truncated response\n"),
        C("hostile: truncated body", "* 1 FETCH (BODY[] {10}\r\nabc",
          "BODY_START 1 uid=0 BODY[] size=10\n"
          "BODY_DATA 1 uid=0 BODY[] size=10 \"abc\"\n"
          "ERROR truncated response\n"),
        C("hostile: truncated small literal", "* LIST () \"/\" {10}\r\nabc",
          "ERROR truncated response\n"),
        C("hostile: number too big", "* 99999999999 EXISTS\r\n",
          "ERROR over a limit\n"),
        C("hostile: zero uid", "* 1 FETCH (UID 0)\r\n",
          "ERROR syntax error\n"),
        C("hostile: bad code number", "* OK [UIDNEXT abc] x\r\n",
          "ERROR syntax error\n"),
        C("hostile: garbage", "hello\r\n",
          "ERROR syntax error\n"),
        C("hostile: tagged bye", "a1 BYE x\r\n",
          "ERROR syntax error\n"),
        C("hostile: literal mid-line", "* LIST () \"/\" {3} x\r\n",
          "ERROR syntax error\n"),
        C("hostile: unterminated quote", "* LIST () \"/\" \"abc\r\n",
          "ERROR syntax error\n"),
        C("hostile: literal8 outside binary", "* LIST () \"/\" ~{3}\r\nabc\r\n",
          "ERROR syntax error\n"),
        C("hostile: body literal out of place", "* 1 FETCH (BODY[] ({3}\r\nabc))\r\n",
          "ERROR syntax error\n"),
        C("hostile: trailing junk", "* 3 EXISTS now\r\n",
          "ERROR syntax error\n"),
        C("hostile: stream after error", "* OK fine\r\n* 1 FETCH (UID)\r\n* OK never\r\n",
          "STATUS * OK \"fine\"\n"
          "ERROR syntax error\n"),
        C("hostile: date", "* 1 FETCH (INTERNALDATE \"31-Feb-2026 10:00:00 +0000\")\r\n",
          "ERROR syntax error\n"),
        C("hostile: modseq overflow", "* 1 FETCH (MODSEQ (18446744073709551616))\r\n",
          "ERROR over a limit\n"),
        C("hostile: tag with plus", "a+1 OK x\r\n",
          "ERROR syntax error\n"),
        C("hostile: empty line", "\r\n",
          "ERROR syntax error\n"),
        C("hostile: section with literal", "* 1 FETCH (BODY[HEADER.FIELDS ({7}\r\nSubject)] {2}\r\nhi)\r\n",
          "ERROR syntax error\n"),
        CLIM("limit: items", small_items, "* SEARCH 1 2 3 4\r\n* SEARCH 1 2 3 4 5\r\n",
          "SEARCH (1 2 3 4)\n"
          "ERROR over a limit\n"),
        CLIM("limit: arena", small_arena, "* 1 FETCH (FLAGS (a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z))\r\n",
          "ERROR over a limit\n"),
        CLIM("limit: body", small_body, "* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n* 1 FETCH (BODY[] {11}\r\n",
          "BODY_START 1 uid=0 BODY[] size=10\n"
          "BODY_DATA 1 uid=0 BODY[] size=10 \"0123456789\"\n"
          "BODY_END 1 uid=0 BODY[] size=10\n"
          "FETCH 1 BODY[]=10/streamed\n"
          "ERROR over a limit\n"),
        CLIM("limit: literal", small_literal, "* LIST () \"/\" {10}\r\n0123456789\r\n* LIST () \"/\" {11}\r\n",
          "LIST () mask=0 \"/\" \"0123456789\"\n"
          "ERROR over a limit\n"),
        CLIM("limit: response", small_response, "* OK 0123456789012345678901234567890123456789012345678901234567\r\n* OK 012345678901234567890123456789012345678901234567890123456789\r\n",
          "STATUS * OK \"0123456789012345678901234567890123456789012345678901234567\"\n"
          "ERROR over a limit\n"),
        CLIM("limit: response with literal", small_response, "* LIST () \"/\" {46}\r\n0123456789012345678901234567890123456789012345\r\n* LIST () \"/\" {47}\r\n",
          "LIST () mask=0 \"/\" \"0123456789012345678901234567890123456789012345\"\n"
          "ERROR over a limit\n"),
        CLIM("limit: depth", small_depth, "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1) \"mixed\"))\r\n* 1 FETCH (BODYSTRUCTURE (((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1) \"mixed\") \"mixed\"))\r\n* 1 FETCH (BODYSTRUCTURE ((((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1) \"mixed\") \"mixed\") \"mixed\"))\r\n",
          "FETCH 1 body=((\"text\" \"plain\" () NIL NIL \"7bit\" 1 lines=1) \"mixed\")\n"
          "FETCH 1 body=(((\"text\" \"plain\" () NIL NIL \"7bit\" 1 lines=1) \"mixed\") \"mixed\")\n"
          "ERROR over a limit\n"),
        C("gmail fetch", "* 12 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334865 X-GM-LABELS (\\Important \"\\\\Sent\" Work) UID 4 MODSEQ (65402) FLAGS (\\Seen) BODY[HEADER.FIELDS (Subject)] {20}\r\nSubject: Gm\r\nail\r\n\r\n)\r\n",
          "BODY_START 12 uid=4 BODY[HEADER.FIELDS (Subject)] size=20\n"
          "BODY_DATA 12 uid=4 BODY[HEADER.FIELDS (Subject)] size=20 \"Subject: Gm\\x0d\\x0aail\\x0d\\x0a\\x0d\\x0a\"\n"
          "BODY_END 12 uid=4 BODY[HEADER.FIELDS (Subject)] size=20\n"
          "FETCH 12 uid=4 modseq=65402 flags=(\\Seen) BODY[HEADER.FIELDS (Subject)]=20/streamed unknown=(X-GM-THRID X-GM-MSGID X-GM-LABELS)\n"),
        C("exchange bodystructure", "* 1 FETCH (UID 77 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 1234 56 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 4567 89 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"_000_\") NIL NIL NIL) RFC822.SIZE 8192)\r\n",
          "FETCH 1 uid=77 size=8192 body=((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 1234 lines=56 ext:NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 4567 lines=89 ext:NIL) \"alternative\" ext:(\"boundary\" \"_000_\"))\n"),
        CB("imap4rev2 responses", "* LIST (\\NonExistent \\Subscribed) \"/\" \"Old/Gone\"\r\n* STATUS \"INBOX\" (MESSAGES 2 SIZE 3456 DELETED 1)\r\n* 3 FETCH (UID 8 BINARY.SIZE[] 120 BINARY[] ~{3}\r\n\0\1\2 PREVIEW \"Hello there\")\r\n* ESEARCH (TAG \"r1\") UID COUNT 2 ALL 4,8\r\n",
          "LIST (\\NonExistent \\Subscribed) mask=0x30 \"/\" \"Old/Gone\"\n"
          "MAILBOX_STATUS \"INBOX\" messages=2 deleted=1 size=3456\n"
          "BODY_START 3 uid=8 BINARY[] size=3\n"
          "BODY_DATA 3 uid=8 BINARY[] size=3 \"\\x00\\x01\\x02\"\n"
          "BODY_END 3 uid=8 BINARY[] size=3\n"
          "FETCH 3 uid=8 BINARY.SIZE[]=120 BINARY[]=3/streamed unknown=(PREVIEW)\n"
          "ESEARCH tag=\"r1\" uid count=2 all=4,8\n"),
        C("literal with CRLF inside envelope", "* 9 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" {12}\r\nHi\r\nthere!!! ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n",
          "FETCH 9 envelope=(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"Hi\\x0d\\x0athere!!!\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\")\n"),
        C("literal-plus marker in a response", "* 1 FETCH (BODY[] {3+}\r\nabc)\r\n",
          "BODY_START 1 uid=0 BODY[] size=3\n"
          "BODY_DATA 1 uid=0 BODY[] size=3 \"abc\"\n"
          "BODY_END 1 uid=0 BODY[] size=3\n"
          "FETCH 1 BODY[]=3/streamed\n"),
        C("hostile: missing paren after body", "* 1 FETCH (BODY[] {3}\r\nabc\r\n",
          "BODY_START 1 uid=0 BODY[] size=3\n"
          "BODY_DATA 1 uid=0 BODY[] size=3 \"abc\"\n"
          "BODY_END 1 uid=0 BODY[] size=3\n"
          "ERROR syntax error\n"),
        C("hostile: fetch of message 0", "* 0 FETCH (UID 1)\r\n",
          "ERROR syntax error\n"),
};
