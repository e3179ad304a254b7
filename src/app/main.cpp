// The `livebase` binary: a thin main over the library.
#include <livebase/app/app.hpp>

int main(int argc, char** argv) {
    livebase::app a;
    return a.main(argc, argv);
}
