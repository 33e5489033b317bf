/*
 * driver_kvm_xml.h - what the libvirt driver's files share to read domain definitions with
 * libxml2, libvirt's own XML library (driver_kvm_base.c, driver_kvm_display.c).
 */
#ifndef VMRQD_DRIVER_KVM_XML_H
#define VMRQD_DRIVER_KVM_XML_H

#include <stddef.h>

#include <libxml/tree.h>

/* The value of `n`'s attribute `name` copied into buf ("" if it has none, or n is NULL);
 * returns buf, the caller's. */
const char *kvm_xml_attr(xmlNodePtr n, const char *name, char *buf, size_t size);

#endif /* VMRQD_DRIVER_KVM_XML_H */
