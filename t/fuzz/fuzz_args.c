/*
 * fuzz_args.c - libFuzzer target: the library's argument parsing, as a portal feeds it. The
 * input is split at its first newline into a command and the rest; the rest goes through
 * vmrq_request_set_json() and, split at '=' per line, vmrq_request_set_text(); then
 * vmrq_request_validate() and the rendering of the arguments. Run by `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmrq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *nl, *rest, *line, *save = NULL;
    vmrq_request *req;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    nl = strchr(text, '\n');
    rest = nl ? (*nl = '\0', nl + 1) : text + strlen(text);
    req = vmrq_request_new(text);
    if (!req)
        req = vmrq_request_new("shutdown");
    if (req) {
        vmrq_request_set_json(req, rest);
        vmrq_request_validate(req);
        for (line = strtok_r(rest, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = '\0';
                vmrq_request_set_text(req, line, eq + 1);
            }
        }
        vmrq_request_validate(req);
        (void)vmrq_request_args_json(req);
        vmrq_request_free(req);
    }
    free(text);
    return 0;
}
