/*
 * driver_kvm_display.c - a domain's display over libvirt: read from its live definition with
 * its secrets (VIR_DOMAIN_XML_SECURE) after a start, and a fresh password set on its persistent
 * definition before one (virDomainUpdateDeviceFlags; a driver without it, such as libvirt's test
 * driver, gets the definition written again with virDomainDefineXML). XML with libxml2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libvirt/virterror.h>

#include "driver_kvm.h"
#include "driver_kvm_xml.h"

/* The first <graphics> of type spice or vnc in `doc`, or NULL. */
static xmlNodePtr
first_graphics(xmlDocPtr doc)
{
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    char type[16];

    for (xmlNodePtr dev = root ? root->children : NULL; dev; dev = dev->next) {
        if (dev->type != XML_ELEMENT_NODE || strcmp((const char *)dev->name, "devices") != 0)
            continue;
        for (xmlNodePtr g = dev->children; g; g = g->next)
            if (g->type == XML_ELEMENT_NODE && strcmp((const char *)g->name, "graphics") == 0 &&
                (strcmp(kvm_xml_attr(g, "type", type, sizeof(type)), "spice") == 0 || strcmp(type, "vnc") == 0))
                return g;
    }
    return NULL;
}

/* The address graphics device `g` listens on into buf: its <listen type='address'> or its
 * listen attribute; "" when it names none (the hypervisor's default, the loopback for QEMU);
 * "*" for a network's address. Returns buf. */
static const char *
listen_address(xmlNodePtr g, char *buf, size_t size)
{
    char type[16];

    kvm_xml_attr(g, "listen", buf, size);
    for (xmlNodePtr l = g->children; !buf[0] && l; l = l->next) {
        if (l->type != XML_ELEMENT_NODE || strcmp((const char *)l->name, "listen") != 0)
            continue;
        kvm_xml_attr(l, "type", type, sizeof(type));
        if (strcmp(type, "address") == 0)
            kvm_xml_attr(l, "address", buf, size);
        else if (strcmp(type, "network") == 0)
            snprintf(buf, size, "*");
    }
    return buf;
}

static bool
is_loopback(const char *addr)
{
    return !addr[0] || strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 || strcmp(addr, "localhost") == 0;
}

/* The definition of `dom` (with `flags`) parsed; NULL with the error reported. */
static xmlDocPtr
definition(struct driver_dom *dom, unsigned flags)
{
    char *xml = virDomainGetXMLDesc(dom->dom, flags | VIR_DOMAIN_XML_SECURE);
    xmlDocPtr doc;

    if (!xml) {
        kvm_report("display");
        return NULL;
    }
    doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
    free(xml);
    if (!doc)
        driver_error_set(false, false, "display: the definition of %s is not XML", virDomainGetName(dom->dom));
    return doc;
}

int
kvm_display_get(struct driver_dom *dom, struct dom_display *out)
{
    xmlDocPtr doc = definition(dom, 0);
    xmlNodePtr g;
    char buf[32];
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!doc)
        return -1;
    if (!(g = first_graphics(doc)))
        goto cleanup;
    kvm_xml_attr(g, "type", out->type, sizeof(out->type));
    out->port = atoi(kvm_xml_attr(g, "port", buf, sizeof(buf)));
    out->tls_port = atoi(kvm_xml_attr(g, "tlsPort", buf, sizeof(buf)));
    if (out->port <= 0 || out->port > 65535)
        out->port = 0;
    if (out->tls_port <= 0 || out->tls_port > 65535)
        out->tls_port = 0;
    kvm_xml_attr(g, "passwd", out->password, sizeof(out->password));
    listen_address(g, out->host, sizeof(out->host));
    if (!out->host[0]) {
        snprintf(out->host, sizeof(out->host), "127.0.0.1");
    } else if (strcmp(out->host, "0.0.0.0") == 0 || strcmp(out->host, "::") == 0 || strcmp(out->host, "*") == 0) {
        char *name = virConnectGetHostname(virDomainGetConnect(dom->dom));
        virResetLastError();
        snprintf(out->host, sizeof(out->host), "%s", name ? name : "localhost");
        free(name);
    }
    ret = out->port || out->tls_port ? 1 : 0;

cleanup:
    xmlFreeDoc(doc);
    return ret;
}

int
kvm_display_password(struct driver_dom *dom, const char *password, bool always)
{
    xmlDocPtr doc = definition(dom, VIR_DOMAIN_XML_INACTIVE);
    xmlBufferPtr buf = NULL;
    xmlChar *whole = NULL;
    xmlNodePtr g;
    char addr[256], pw[64];
    int ret = -1, len = 0;
    virErrorPtr e;

    if (!doc)
        return -1;
    if (!(g = first_graphics(doc)) || (!always && is_loopback(listen_address(g, addr, sizeof(addr))))) {
        ret = 0;
        goto cleanup;
    }
    /* VNC takes 8 characters of a password, and QEMU refuses a longer one */
    kvm_xml_attr(g, "type", addr, sizeof(addr));
    snprintf(pw, sizeof(pw), "%.*s", strcmp(addr, "vnc") == 0 ? 8 : (int)sizeof(pw) - 1, password);
    xmlSetProp(g, (const xmlChar *)"passwd", (const xmlChar *)pw);
    if (!(buf = xmlBufferCreate()) || xmlNodeDump(buf, doc, g, 0, 0) < 0) {
        driver_error_set(false, false, "display: out of memory");
        goto cleanup;
    }
    if (virDomainUpdateDeviceFlags(dom->dom, (const char *)xmlBufferContent(buf), VIR_DOMAIN_AFFECT_CONFIG) == 0) {
        ret = 1;
        goto cleanup;
    }
    e = virGetLastError();
    if (!e || (e->code != VIR_ERR_NO_SUPPORT && e->code != VIR_ERR_OPERATION_UNSUPPORTED &&
               e->code != VIR_ERR_CONFIG_UNSUPPORTED)) {
        kvm_report("display password");
        goto cleanup;
    }
    virResetLastError();
    /* a driver that cannot update a device: the whole definition, written again */
    xmlDocDumpMemory(doc, &whole, &len);
    if (!whole) {
        driver_error_set(false, false, "display: out of memory");
        goto cleanup;
    }
    {
        virDomainPtr d = virDomainDefineXML(virDomainGetConnect(dom->dom), (const char *)whole);
        if (!d) {
            kvm_report("display password");
            goto cleanup;
        }
        virDomainFree(d);
    }
    ret = 1;

cleanup:
    xmlFree(whole);
    xmlBufferFree(buf);
    xmlFreeDoc(doc);
    return ret;
}
