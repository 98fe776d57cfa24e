/*
 * The interfaces of ipc/org.tegami.Mail1.xml as C strings, generated at build
 * time by ipc/embed-xml.py: Introspect serves the installed contract verbatim.
 */
#pragma once

#include <stddef.h>

typedef struct IpcXmlInterface {
        const char *name; /* "org.tegami.Mail1", ... */
        const char *xml;  /* the whole <interface> element, doc comments included */
} IpcXmlInterface;

extern const IpcXmlInterface ipc_xml_interfaces[];
extern const size_t ipc_xml_n_interfaces;
