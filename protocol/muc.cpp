#include "protocol/muc.hpp"
