/*
 * driver_kvm_xml.c - reading domain definitions with libxml2 (see driver_kvm_xml.h).
 */
#include <stdio.h>

#include "driver_kvm_xml.h"

const char *
kvm_xml_attr(xmlNodePtr n, const char *name, char *buf, size_t size)
{
    xmlChar *v = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;

    snprintf(buf, size, "%s", v ? (const char *)v : "");
    xmlFree(v);
    return buf;
}
