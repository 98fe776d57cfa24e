/*
 * Tests for ipc/path.c: round trips, canonical forms only, and rejection of
 * every path that is not an account object.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dbus/dbus.h>

#include "ipc/path.h"
#include "util/macro.h"

static void check_round_trip(const char *name, const char *element) {
        _cleanup_free_ char *path = ipc_path_from_account(name), *back = NULL;
        char want[512];

        snprintf(want, sizeof want, IPC_PATH_ACCOUNTS "/%s", element);
        assert(path && strcmp(path, want) == 0);
        assert(dbus_validate_path(path, NULL));
        assert(ipc_path_to_account(path, &back) == 0);
        assert(strcmp(back, name) == 0);
}

static void check_rejected(const char *path) {
        char *name = NULL;

        assert(ipc_path_to_account(path, &name) == -EINVAL);
        assert(name == NULL);
}

int main(void) {
        check_round_trip("work", "work");
        check_round_trip("work.old", "work_2eold");
        check_round_trip("a-b_c", "a_2db_5fc");
        check_round_trip("\xe6\x89\x8b", "_e6_89_8b");
        assert(ipc_path_escape("") == NULL);

        check_rejected("/org/tegami/Mail1");
        check_rejected("/org/tegami/Mail1/account");
        check_rejected("/org/tegami/Mail1/account/");
        check_rejected("/org/tegami/Mail1/accounts/x");
        check_rejected("/org/tegami/Mail1/account/_");
        check_rejected("/org/tegami/Mail1/account/_2");
        check_rejected("/org/tegami/Mail1/account/_zz");
        check_rejected("/org/tegami/Mail1/account/_41"); /* 'A' needs no escape */
        check_rejected("/org/tegami/Mail1/account/_00");
        check_rejected("/org/tegami/Mail1/account/_2E"); /* lowercase only */
        check_rejected("/org/tegami/Mail1/account/a/b");
        printf("ok path\n");
        return 0;
}
