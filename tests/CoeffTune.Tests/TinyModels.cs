using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests;

/// <summary>Small random models and batches, reproducible from a seed.</summary>
internal static class TinyModels
{
    public static BertConfig BertShape => new() { VocabSize = 50, Dim = 32, Depth = 2, Heads = 4, IntermediateDim = 64, MaxPositions = 16, Classes = 3 };

    public static BertClassifier Bert(int seed = 0)
    {
        torch.manual_seed(seed);
        var m = new BertClassifier(BertShape);
        m.eval();
        return m;
    }

    public static Batch TextBatch(int seed = 100)
    {
        torch.manual_seed(seed);
        var ids = randint(0, 50, new long[] { 4, 10 });
        var mask = ones(4, 10, ScalarType.Int64);
        mask[1, TensorIndex.Slice(7)] = 0;
        mask[3, TensorIndex.Slice(4)] = 0;
        return new Batch(ids, mask, null, tensor(new long[] { 0, 1, 2, 1 }));
    }

    public static VisionTransformer Vit(int seed = 0)
    {
        torch.manual_seed(seed);
        var m = new VisionTransformer(new VitConfig { ImageSize = 8, PatchSize = 4, Channels = 1, Dim = 32, Depth = 2, Heads = 4, MlpDim = 64, Classes = 3 });
        m.eval();
        return m;
    }

    public static Batch ImageBatch(int seed = 100)
    {
        torch.manual_seed(seed);
        return new Batch(rand(4, 1, 8, 8), Labels: tensor(new long[] { 0, 1, 2, 1 }));
    }
}
