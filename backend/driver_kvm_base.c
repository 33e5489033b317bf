/*
 * driver_kvm_base.c - bases and clones over libvirt's storage API (see driver.h): a base's
 * volumes are copies of the desktop's disks made by the pool itself (virStorageVolCreateXMLFrom),
 * a clone's disks are qcow2 overlays backed by them (virStorageVolCreateXML with a
 * <backingStore>), so that it works on any node libvirt reaches, local or remote, with no
 * qemu-img of vmrq's own. Domain definitions are edited with libxml2, libvirt's own XML library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libvirt/virterror.h>

#include "clock.h"
#include "driver_kvm.h"
#include "driver_kvm_xml.h"

#define BASE_SUFFIX ".base.qcow2"

/* The domain definition `xml` parsed, with an XPath context; NULL (reported) if it does not parse. */
struct def {
    xmlDocPtr doc;
    xmlXPathContextPtr ctx;
};

static int
def_parse(struct def *d, const char *xml, const char *what)
{
    d->doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
    d->ctx = d->doc ? xmlXPathNewContext(d->doc) : NULL;
    if (!d->ctx) {
        driver_error_set(false, false, "%s: the definition is not XML", what);
        xmlFreeDoc(d->doc);
        return -1;
    }
    return 0;
}

static void
def_free(struct def *d)
{
    xmlXPathFreeContext(d->ctx);
    xmlFreeDoc(d->doc);
}

/* The definition as text (caller frees), or NULL (reported). */
static char *
def_text(struct def *d, const char *what)
{
    xmlChar *buf = NULL;
    char *text;
    int len = 0;

    xmlDocDumpMemory(d->doc, &buf, &len);
    text = buf ? strdup((const char *)buf) : NULL;
    xmlFree(buf);
    if (!text)
        driver_error_set(false, false, "%s: out of memory", what);
    return text;
}

/* The nodes `path` selects (caller frees with xmlXPathFreeObject; nodesetval may be NULL). */
static xmlXPathObjectPtr
xpath(struct def *d, const char *path)
{
    return xmlXPathEvalExpression((const xmlChar *)path, d->ctx);
}

static xmlNodePtr
child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

/* Removes every node `path` selects. */
static void
drop(struct def *d, const char *path)
{
    xmlXPathObjectPtr o = xpath(d, path);

    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        xmlUnlinkNode(o->nodesetval->nodeTab[i]);
        xmlFreeNode(o->nodesetval->nodeTab[i]);
        o->nodesetval->nodeTab[i] = NULL;
    }
    xmlXPathFreeObject(o);
}

/* A disk's file and target, and whether it is its own (not read-only, not shared): the disks a
 * base copies and a clone overlays. false if it has no file of its own (a CD-ROM, a network disk). */
static bool
writable_disk(xmlNodePtr disk, char *file, size_t fsize, char *target, size_t tsize)
{
    char type[32], device[32];

    kvm_xml_attr(disk, "type", type, sizeof(type));
    kvm_xml_attr(disk, "device", device, sizeof(device));
    kvm_xml_attr(child(disk, "source"), "file", file, fsize);
    kvm_xml_attr(child(disk, "target"), "dev", target, tsize);
    return strcmp(type, "file") == 0 && (!*device || strcmp(device, "disk") == 0) && *file && *target &&
           !child(disk, "readonly") && !child(disk, "shareable");
}

/* Points `disk` at `path`, a qcow2 volume. */
static void
retarget(xmlNodePtr disk, const char *path)
{
    xmlNodePtr driver = child(disk, "driver");

    xmlSetProp(child(disk, "source"), (const xmlChar *)"file", (const xmlChar *)path);
    if (!driver)
        driver = xmlNewChild(disk, NULL, (const xmlChar *)"driver", NULL);
    xmlSetProp(driver, (const xmlChar *)"name", (const xmlChar *)"qemu");
    xmlSetProp(driver, (const xmlChar *)"type", (const xmlChar *)"qcow2");
    for (xmlNodePtr b; (b = child(disk, "backingStore"));) { /* the live chain, not the template's */
        xmlUnlinkNode(b);
        xmlFreeNode(b);
    }
}

/* `vol`'s path (caller frees) and capacity. */
static char *
vol_path(virStorageVolPtr vol, unsigned long long *capacity)
{
    virStorageVolInfo info;

    if (capacity && virStorageVolGetInfo(vol, &info) == 0)
        *capacity = info.capacity;
    return virStorageVolGetPath(vol);
}

/* A copy in progress, watched by a thread of its own: once a second it reads how much of the new
 * volume the pool has written and reports lo + (hi - lo) * written / total to fn. */
struct copy_watch {
    virStoragePoolPtr pool;
    const char *volname;
    unsigned long long total; /* the source's allocation */
    double lo, hi;
    driver_progress_fn fn;
    void *opaque;
    pthread_mutex_t lock;
    pthread_cond_t done;
    bool stop;
};

static void *
copy_watch_run(void *arg)
{
    struct copy_watch *cw = arg;
    struct timespec until;

    pthread_mutex_lock(&cw->lock);
    for (;;) {
        virStorageVolInfo info;
        virStorageVolPtr vol;
        double part = -1;

        clock_deadline(&until, 1000);
        while (!cw->stop && pthread_cond_timedwait(&cw->done, &cw->lock, &until) == 0)
            ;
        if (cw->stop)
            break;
        pthread_mutex_unlock(&cw->lock);
        /* The volume is in the pool (being built) while the copy runs; a failure to read it only
         * skips this second's report. */
        if ((vol = virStorageVolLookupByName(cw->pool, cw->volname))) {
            if (virStorageVolGetInfo(vol, &info) == 0 && cw->total > 0)
                part = (double)info.allocation / (double)cw->total;
            virStorageVolFree(vol);
        }
        virResetLastError();
        if (part >= 0)
            cw->fn(cw->opaque, cw->lo + (cw->hi - cw->lo) * (part < 0.99 ? part : 0.99));
        pthread_mutex_lock(&cw->lock);
    }
    pthread_mutex_unlock(&cw->lock);
    return NULL;
}

/* virStorageVolCreateXMLFrom(pool, volxml, src) with progress reported to fn (if any) from a
 * thread of its own while it runs: fn must not touch what the caller uses meanwhile. Returns the
 * new volume (caller frees) or NULL with libvirt's error left to report. */
static virStorageVolPtr
copy_volume(virStoragePoolPtr pool, const char *volname, const char *volxml, virStorageVolPtr src, double lo,
            double hi, driver_progress_fn fn, void *opaque)
{
    struct copy_watch cw = { pool, volname, 0, lo, hi, fn, opaque, PTHREAD_MUTEX_INITIALIZER,
                             PTHREAD_COND_INITIALIZER, false };
    virStorageVolInfo info;
    virStorageVolPtr vol;
    pthread_t thread;
    bool watching;

    if (virStorageVolGetInfo(src, &info) == 0)
        cw.total = info.allocation;
    virResetLastError();
    watching = fn && cw.total > 0 && pthread_create(&thread, NULL, copy_watch_run, &cw) == 0;
    vol = virStorageVolCreateXMLFrom(pool, volxml, src, 0);
    if (watching) {
        pthread_mutex_lock(&cw.lock);
        cw.stop = true;
        pthread_cond_signal(&cw.done);
        pthread_mutex_unlock(&cw.lock);
        pthread_join(thread, NULL);
    }
    pthread_mutex_destroy(&cw.lock);
    pthread_cond_destroy(&cw.done);
    return vol;
}

int
kvm_base_prepare(struct driver_dom *dom, const char *pool_name, char **base_xml, driver_progress_fn fn,
                 void *opaque)
{
    const char *name = virDomainGetName(dom->dom);
    virConnectPtr conn = virDomainGetConnect(dom->dom);
    virStoragePoolPtr pool = NULL;
    xmlXPathObjectPtr disks = NULL;
    char *xml = NULL, what[320];
    struct def d = { NULL, NULL };
    int ret = -1;

    snprintf(what, sizeof(what), "prepare_base: %s", name);
    if (!(pool = virStoragePoolLookupByName(conn, pool_name))) {
        kvm_report("prepare_base: storage pool");
        return -1;
    }
    if (!(xml = virDomainGetXMLDesc(dom->dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE))) {
        kvm_report(what);
        goto cleanup;
    }
    if (def_parse(&d, xml, what) < 0)
        goto cleanup;
    disks = xpath(&d, "/domain/devices/disk");
    if (fn)
        fn(opaque, 0);
    for (int i = 0, n = disks && disks->nodesetval ? disks->nodesetval->nodeNr : 0, copied = 0; i < n; i++) {
        xmlNodePtr disk = disks->nodesetval->nodeTab[i];
        char file[1024], target[64], volname[400], volxml[1024];
        unsigned long long capacity = 0;
        virStorageVolPtr src, base;
        char *path;

        if (!writable_disk(disk, file, sizeof(file), target, sizeof(target)))
            continue;
        if (!(src = virStorageVolLookupByPath(conn, file))) {
            virResetLastError();
            driver_error_set(false, false, "prepare_base: disk %s of %s (%s) is not a volume of a storage pool",
                             target, name, file);
            goto cleanup;
        }
        snprintf(volname, sizeof(volname), "%s-%s" BASE_SUFFIX, name, target);
        free(vol_path(src, &capacity));
        snprintf(volxml, sizeof(volxml),
                 "<volume><name>%s</name><capacity unit='bytes'>%llu</capacity>"
                 "<target><format type='qcow2'/><permissions><mode>0444</mode></permissions></target></volume>",
                 volname, capacity);
        if (!(base = virStorageVolLookupByName(pool, volname))) { /* kept from an earlier try */
            virResetLastError();
            base = copy_volume(pool, volname, volxml, src, (double)copied / n, (double)(copied + 1) / n, fn,
                               opaque);
        }
        virStorageVolFree(src);
        if (!base || !(path = vol_path(base, NULL))) {
            kvm_report(what);
            if (base)
                virStorageVolFree(base);
            goto cleanup;
        }
        retarget(disk, path);
        xmlNewChild(disk, NULL, (const xmlChar *)"readonly", NULL);
        free(path);
        virStorageVolFree(base);
        if (fn && ++copied < n) /* a disk's share of the work; the last is said once all is done */
            fn(opaque, (double)copied / n);
    }
    ret = (*base_xml = def_text(&d, what)) ? 0 : -1;
    if (ret == 0 && fn)
        fn(opaque, 1);

cleanup:
    xmlXPathFreeObject(disks);
    def_free(&d);
    free(xml);
    virStoragePoolFree(pool);
    return ret;
}

/* Deletes the volume at `path` unless it is a base volume and !bases; a volume already gone is
 * fine. -1 (reported) if the pool refuses. */
static int
delete_volume(virConnectPtr conn, const char *path, bool bases, const char *what)
{
    virStorageVolPtr vol = virStorageVolLookupByPath(conn, path);
    size_t len = strlen(path), slen = strlen(BASE_SUFFIX);
    int ret = 0;

    if (!vol) {
        virResetLastError();
        return 0;
    }
    if ((bases || len < slen || strcmp(path + len - slen, BASE_SUFFIX) != 0) && virStorageVolDelete(vol, 0) < 0)
        ret = kvm_report(what);
    virStorageVolFree(vol);
    return ret;
}

int
kvm_base_remove(struct driver *drv, const char *base_xml)
{
    virConnectPtr conn = kvm_conn_get(drv->priv);
    xmlXPathObjectPtr disks = NULL;
    struct def d = { NULL, NULL };
    int ret = -1;

    if (!conn)
        return -1;
    if (def_parse(&d, base_xml, "remove_base") < 0)
        goto cleanup;
    disks = xpath(&d, "/domain/devices/disk/source");
    ret = 0;
    for (int i = 0; ret == 0 && disks && disks->nodesetval && i < disks->nodesetval->nodeNr; i++) {
        char file[1024];
        if (*kvm_xml_attr(disks->nodesetval->nodeTab[i], "file", file, sizeof(file)))
            ret = delete_volume(conn, file, true, "remove_base");
    }

cleanup:
    xmlXPathFreeObject(disks);
    def_free(&d);
    virConnectClose(conn);
    return ret;
}

/* A file a device logs to (a serial console's) is the clone's own: BASE.serial becomes
 * NAME.serial, any other file NAME-FILE, in the same directory; two machines cannot share one. */
static void
own_logs(struct def *d, const char *base, const char *name)
{
    xmlXPathObjectPtr o = xpath(d, "/domain/devices/*[@type='file']/source[@path]");

    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        char path[1024], mine[1400];
        const char *file;
        size_t dirlen, blen = strlen(base);

        kvm_xml_attr(o->nodesetval->nodeTab[i], "path", path, sizeof(path));
        file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        dirlen = (size_t)(file - path);
        if (blen && strncmp(file, base, blen) == 0)
            snprintf(mine, sizeof(mine), "%.*s%s%s", (int)dirlen, path, name, file + blen);
        else
            snprintf(mine, sizeof(mine), "%.*s%s-%s", (int)dirlen, path, name, file);
        xmlSetProp(o->nodesetval->nodeTab[i], (const xmlChar *)"path", (const xmlChar *)mine);
    }
    xmlXPathFreeObject(o);
}

struct driver_dom *
kvm_clone(struct driver *drv, const char *base_xml, const char *name, const char *pool_name)
{
    struct kvm *kvm = drv->priv;
    virConnectPtr conn = kvm_conn_get(kvm);
    virStoragePoolPtr pool = NULL;
    xmlXPathObjectPtr disks = NULL;
    struct driver_dom *clone = NULL;
    struct def d = { NULL, NULL };
    char *made[16] = { NULL }, *xml = NULL, what[320];
    size_t nmade = 0;

    snprintf(what, sizeof(what), "clone: %s", name);
    if (!conn)
        return NULL;
    { /* made already, by a run a dead vmrqd did not finish: that one */
        virDomainPtr made_before = virDomainLookupByName(conn, name);
        if (made_before) {
            clone = kvm_wrap(kvm, made_before, what);
            virConnectClose(conn);
            return clone;
        }
        virResetLastError();
    }
    if (!(pool = virStoragePoolLookupByName(conn, pool_name))) {
        kvm_report("clone: storage pool");
        goto cleanup;
    }
    if (def_parse(&d, base_xml, what) < 0)
        goto cleanup;
    /* a new machine: its own name, and uuid, MACs and NVRAM that libvirt makes anew */
    {
        xmlChar *base_name = xmlNodeGetContent(child(xmlDocGetRootElement(d.doc), "name"));
        own_logs(&d, base_name ? (const char *)base_name : "", name);
        xmlFree(base_name);
    }
    xmlNodeSetContent(child(xmlDocGetRootElement(d.doc), "name"), (const xmlChar *)name);
    drop(&d, "/domain/uuid");
    drop(&d, "/domain/devices/interface/mac");
    drop(&d, "/domain/os/nvram");
    disks = xpath(&d, "/domain/devices/disk");
    for (int i = 0; disks && disks->nodesetval && i < disks->nodesetval->nodeNr; i++) {
        xmlNodePtr disk = disks->nodesetval->nodeTab[i], ro;
        char file[1024], target[64], volname[400], volxml[2048];
        unsigned long long capacity = 0;
        virStorageVolPtr base, overlay;

        if (!(ro = child(disk, "readonly")) || !(base = virStorageVolLookupByPath(conn,
                                                        kvm_xml_attr(child(disk, "source"), "file", file, sizeof(file))))) {
            virResetLastError();
            continue; /* not one of the base's volumes: a CD-ROM, a shared disk, as the base has it */
        }
        kvm_xml_attr(child(disk, "target"), "dev", target, sizeof(target));
        free(vol_path(base, &capacity));
        virStorageVolFree(base);
        snprintf(volname, sizeof(volname), "%s-%s.qcow2", name, target);
        snprintf(volxml, sizeof(volxml),
                 "<volume><name>%s</name><capacity unit='bytes'>%llu</capacity><target><format type='qcow2'/></target>"
                 "<backingStore><path>%s</path><format type='qcow2'/></backingStore></volume>",
                 volname, capacity, file);
        if (!(overlay = virStorageVolLookupByName(pool, volname))) /* an earlier run's, never used */
            virResetLastError();
        if (!overlay && !(overlay = virStorageVolCreateXML(pool, volxml, 0))) {
            kvm_report(what);
            goto cleanup;
        }
        if (nmade < sizeof(made) / sizeof(made[0]))
            made[nmade++] = vol_path(overlay, NULL);
        retarget(disk, made[nmade - 1] ? made[nmade - 1] : file);
        xmlUnlinkNode(ro);
        xmlFreeNode(ro);
        virStorageVolFree(overlay);
    }
    if ((xml = def_text(&d, what)))
        clone = kvm_wrap(kvm, virDomainDefineXML(conn, xml), what);

cleanup:
    if (!clone) /* nothing of a clone that was not made stays behind */
        for (size_t i = 0; i < nmade; i++)
            if (made[i])
                delete_volume(conn, made[i], false, what);
    for (size_t i = 0; i < nmade; i++)
        free(made[i]);
    free(xml);
    xmlXPathFreeObject(disks);
    def_free(&d);
    if (pool)
        virStoragePoolFree(pool);
    virConnectClose(conn);
    return clone;
}

int
kvm_remove(struct driver_dom *dom)
{
    const char *name = virDomainGetName(dom->dom);
    virConnectPtr conn = virDomainGetConnect(dom->dom);
    unsigned int flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                         VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
    xmlXPathObjectPtr disks = NULL;
    struct def d = { NULL, NULL };
    char *xml = NULL, what[320];
    int ret = -1;

    snprintf(what, sizeof(what), "remove_domain: %s", name);
    if (!(xml = virDomainGetXMLDesc(dom->dom, VIR_DOMAIN_XML_INACTIVE))) {
        kvm_report(what);
        return -1;
    }
    if (def_parse(&d, xml, what) < 0)
        goto cleanup;
    if (virDomainIsActive(dom->dom) == 1 && virDomainDestroy(dom->dom) < 0) {
        kvm_report(what);
        goto cleanup;
    }
    /* a driver without NVRAM or checkpoints (libvirt's test driver) refuses those flags */
    if (virDomainUndefineFlags(dom->dom, flags) < 0 &&
        (virGetLastErrorCode() != VIR_ERR_INVALID_ARG ||
         virDomainUndefineFlags(dom->dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0)) {
        kvm_report(what);
        goto cleanup;
    }
    disks = xpath(&d, "/domain/devices/disk");
    ret = 0;
    for (int i = 0; ret == 0 && disks && disks->nodesetval && i < disks->nodesetval->nodeNr; i++) {
        char file[1024], target[64];
        if (writable_disk(disks->nodesetval->nodeTab[i], file, sizeof(file), target, sizeof(target)))
            ret = delete_volume(conn, file, false, what);
    }

cleanup:
    xmlXPathFreeObject(disks);
    def_free(&d);
    free(xml);
    return ret;
}
