// Declarations standing in for Gloo's header of that name (see ../../../README.md).
#pragma once
