{
  "variables": {
    "with_onednn%": "true"
  },
  "targets": [
    {
      "target_name": "collective_native",
      "sources": [
        "native/collective/addon.cc",
        "native/collective/float-add.cc",
        "native/collective/float16.cc",
        "native/collective/shm-segment.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-ffp-contract=off"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-ffp-contract=off", "-Wall", "-Wextra"],
      "libraries": ["-lrt"]
    }
  ],
  "conditions": [
    ["with_onednn=='true'", {
        "targets": [
          {
            "target_name": "onednn_backend",
            "sources": [
              "native/addon.cc",
              "native/dnnl-context.cc",
              "native/batch-norm.cc",
              "native/convolution.cc",
              "native/elementwise.cc",
              "native/matmul.cc",
              "native/max-pool.cc",
              "native/reduction.cc"
            ],
            "include_dirs": [
              "<!(node -p \"require('node-addon-api').include_dir\")"
            ],
            "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
            "cflags!": ["-fno-exceptions", "-O2"],
            "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
            "cflags": ["-O3", "-fopenmp", "-ffp-contract=off"],
            "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fopenmp", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            "libraries": ["-ldnnl", "-fopenmp"]
          }
        ]
    }]
  ]
}
