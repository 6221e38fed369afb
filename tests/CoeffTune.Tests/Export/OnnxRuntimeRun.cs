using CoeffTune.Models;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace CoeffTune.Tests.Export;

/// <summary>Runs an exported graph with ONNX Runtime on a library batch, feeding exactly the inputs the graph declares.</summary>
internal static class OnnxRuntimeRun
{
    public static Tensor Run(InferenceSession session, Batch batch, string output)
    {
        var feeds = session.InputMetadata.Keys.Select(name => name switch
        {
            "input_ids" => Longs(name, batch.Inputs),
            "attention_mask" => Longs(name, batch.AttentionMask!),
            "token_type_ids" => Longs(name, batch.TokenTypeIds ?? zeros_like(batch.Inputs)),
            "pixel_values" => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(batch.Inputs.contiguous().data<float>().ToArray(), Dims(batch.Inputs))),
            _ => throw new ArgumentException($"the graph asks for an input '{name}' the test does not have"),
        }).ToList();
        using var results = session.Run(feeds);
        var t = results.Single(r => r.Name == output).AsTensor<float>();
        return tensor(t.ToArray(), t.Dimensions.ToArray().Select(d => (long)d).ToArray());
    }

    private static NamedOnnxValue Longs(string name, Tensor t) =>
        NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(t.contiguous().data<long>().ToArray(), Dims(t)));

    private static int[] Dims(Tensor t) => t.shape.Select(d => (int)d).ToArray();
}
