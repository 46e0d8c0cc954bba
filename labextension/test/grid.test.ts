import { describe, expect, it } from 'vitest';

import { filterModels, memoryLine, planGrid } from '../src/grid';
import { colourMap } from '../src/palette';
import type { MemoryFit, Plan, Shape } from '../src/schema';

const shapes: Shape[] = [
  { name: 'VM.GPU.A10.2', gpu_specs: { gpu_count: 2, gpu_memory_in_gbs: 48, gpu_type: 'A10' } },
  { name: 'BM.GPU.A10.4', gpu_specs: { gpu_count: 4, gpu_memory_in_gbs: 96, gpu_type: 'A10' } }
];

const plan: Plan = {
  deployment_config: {},
  gpu_allocation: {
    'VM.GPU.A10.2': {
      models: [
        { ocid: 'b', gpu_count: 1, model_name: 'B', gpu_memory_in_gbs: 24, estimated_need_in_gbs: 7 },
        { ocid: 'a', gpu_count: 1, model_name: 'A' }
      ],
      total_gpus_available: 2,
      used_gpus: 2
    },
    'BM.GPU.A10.4': {
      models: [
        { ocid: 'a', gpu_count: 2 },
        { ocid: 'b', gpu_count: 1 }
      ],
      total_gpus_available: 4,
      used_gpus: 3,
      notes: ['uses 3 of 4 GPUs']
    }
  },
  incompatible_shapes: { 'VM.GPU2.1': ['too small'] }
};

describe('planGrid', () => {
  it("counts a CPU flex shape's slots in OCPUs, as the server's plan says", () => {
    const flex: Plan = {
      deployment_config: {},
      gpu_allocation: {
        'VM.Standard.E4.Flex': {
          models: [{ ocid: 'a', gpu_count: 4 }, { ocid: 'b', gpu_count: 4 }],
          total_gpus_available: 8,
          used_gpus: 8,
          slot_unit: 'OCPU'
        }
      },
      incompatible_shapes: {}
    };
    const row = planGrid(flex, [{ name: 'VM.Standard.E4.Flex' }], ['a', 'b']).rows[0];
    expect(row.units.many).toBe('OCPUs');
    expect(row.units.cpu).toBe(true);
  });

  it('draws one cell per GPU, owned in plan order, free cells last', () => {
    const grid = planGrid(plan, shapes, ['a', 'b']);
    expect(grid.rows.map(r => r.shape)).toEqual(['VM.GPU.A10.2', 'BM.GPU.A10.4']);
    const big = grid.rows[1];
    expect(big.cells.map(c => c.owner)).toEqual(['a', 'a', 'b', null]);
    expect(big.cells[3].colour).toBeNull();
    expect(big.gpuMemory).toBe(24);
    expect(big.notes).toEqual(['uses 3 of 4 GPUs']);
    expect(grid.incompatible).toEqual([{ shape: 'VM.GPU2.1', reasons: ['too small'] }]);
  });

  it('gives each model the colour of its served name, on every shape', () => {
    const grid = planGrid(plan, shapes, ['a', 'b']);
    const tints = colourMap(['a', 'b']);
    expect(grid.colours).toEqual([tints.get('a'), tints.get('b')]);
    for (const row of grid.rows) {
      for (const cell of row.cells.filter(c => c.owner)) {
        expect(cell.colour).toBe(tints.get(cell.owner!));
      }
    }
  });

  it('tells two copies of one model apart', () => {
    const twice: Plan = {
      deployment_config: {},
      gpu_allocation: {
        'VM.GPU.A10.2': {
          models: [
            { ocid: 'a', gpu_count: 1 },
            { ocid: 'a', gpu_count: 1 }
          ],
          total_gpus_available: 2,
          used_gpus: 2
        }
      }
    };
    const row = planGrid(twice, shapes, ['a', 'a']).rows[0];
    expect(row.cells.map(c => c.slot)).toEqual([0, 1]);
    expect(new Set(row.cells.map(c => c.colour)).size).toBe(2);
  });

  it('keeps memory need and GPU memory per model, and names by id when unnamed', () => {
    const row = planGrid(plan, shapes, ['a', 'b']).rows[0];
    expect(row.models.find(m => m.id === 'b')).toMatchObject({ name: 'B', memory: 24, need: 7 });
    expect(planGrid(plan, shapes, []).rows[1].models[0].name).toBe('a');
  });

  it('handles a plan without compatible shapes', () => {
    const grid = planGrid({ deployment_config: {}, gpu_allocation: {}, error_message: 'no shape fits' }, shapes, ['a']);
    expect(grid.rows).toEqual([]);
    expect(grid.error).toBe('no shape fits');
  });
});

describe('filterModels', () => {
  const models = [
    { id: 'x/Big-70B', name: 'Big', task: 'text_generation', parameter_count_b: 70 },
    { id: 'x/small', name: 'Small', task: 'text_generation', parameter_count_b: 1 },
    { id: 'x/embed', name: 'Embed', task: 'text_embedding', parameter_count_b: null }
  ];
  it('filters by text (name or id), task, size and shape', () => {
    const all = { text: '', task: '', maxBillions: null };
    expect(filterModels(models, { ...all, text: 'big' }, null).map(m => m.id)).toEqual(['x/Big-70B']);
    expect(filterModels(models, { ...all, task: 'text_embedding' }, null).map(m => m.name)).toEqual(['Embed']);
    expect(filterModels(models, { ...all, maxBillions: 8 }, null).map(m => m.name)).toEqual(['Small']);
    expect(filterModels(models, all, new Set(['x/embed'])).map(m => m.name)).toEqual(['Embed']);
  });
});

describe('memory from the capacity planner', () => {
  const fit: MemoryFit = {
    tensor_parallel_size: 1,
    weights_gb: 16.06,
    kv_bytes_per_token: 131072,
    kv_cache_gb: 4.295,
    overhead_gb: 2,
    per_gpu_gb: 22.355,
    gpu_memory_gb: 21.6,
    gpu_memory_utilization: 0.9,
    max_model_len: 8192,
    concurrency: 4,
    kv_cache_dtype: 'auto',
    weight_precision: 'bfloat16',
    kv_capacity_tokens: 27008,
    max_model_len_fit: 6752,
    fits: false,
    reasons: ['4 × 8192 tokens need 4.3 GB of KV cache per GPU but 3.5 GB remain']
  };

  it('carries each model\'s per-GPU fit and suggestion into its row', () => {
    const withFit: Plan = {
      ...plan,
      gpu_allocation: {
        'VM.GPU.A10.2': {
          models: [{ ocid: 'a', gpu_count: 1, memory: fit, suggested_parameters: '--max-model-len 6656' }],
          total_gpus_available: 2,
          used_gpus: 1
        }
      }
    };
    const [row] = planGrid(withFit, shapes, ['a']).rows;
    expect(row.models[0].fit?.max_model_len_fit).toBe(6752);
    expect(row.models[0].suggested).toBe('--max-model-len 6656');
    expect(planGrid(plan, shapes, ['a', 'b']).rows[0].models[0].fit).toBeNull();
  });

  it('says what each GPU holds, the context that fits and the fix', () => {
    expect(memoryLine(fit, '--max-model-len 6656')).toBe(
      'per GPU 22.4 of 21.6 GB · KV 27,008 tokens · max context 6,752 at concurrency 4 · ' +
        'does not fit: 4 × 8192 tokens need 4.3 GB of KV cache per GPU but 3.5 GB remain · suggested: --max-model-len 6656'
    );
    expect(memoryLine({ ...fit, fits: true, reasons: [] }, null)).toMatch(/· fits$/);
  });
});

describe('planGrid where models share GPUs', () => {
  const local: Shape[] = [{ name: 'LOCAL.GPU.H100.2', gpu_specs: { gpu_count: 2, gpu_memory_in_gbs: 171, gpu_type: 'H100' } }];
  const shared: Plan = {
    deployment_config: {},
    gpu_allocation: {
      'LOCAL.GPU.H100.2': {
        models: [
          { ocid: 'wide', gpu_count: 1, gpu_indices: [0], memory_budget_in_gbs: 2.07, sharing: "shares GPU 0 with 'small-b'" },
          { ocid: 'small-a', gpu_count: 1, gpu_indices: [1], memory_budget_in_gbs: 1.25 },
          { ocid: 'small-b', gpu_count: 1, gpu_indices: [0], memory_budget_in_gbs: 1.25, sharing: "shares GPU 0 with 'wide'" }
        ],
        total_gpus_available: 2,
        used_gpus: 2,
        gpu_usable_in_gbs: 76.95
      }
    }
  };

  it('stacks each GPU: a part per model as large as its budget, then the room left', () => {
    const row = planGrid(shared, local, ['wide', 'small-a', 'small-b']).rows[0];
    expect(row.stacks?.map(s => s.parts.map(p => [p.name, p.budget]))).toEqual([
      [['wide', 2.07], ['small-b', 1.25]],
      [['small-a', 1.25]]
    ]);
    expect(row.stacks?.map(s => s.free.toFixed(2))).toEqual(['73.63', '75.70']);
    expect(row.models[2].sharing).toBe("shares GPU 0 with 'wide'");
  });

  it('keeps the row of cells for whole GPUs', () => {
    expect(planGrid(plan, shapes, ['a', 'b']).rows.every(r => r.stacks === null)).toBe(true);
  });
});
